using System.Buffers.Binary;

namespace Gateway.Cql.Protocol;

/// <summary>
/// The Murmur3Partitioner token: the first 64 bits of MurmurHash3 x64 128 (seed 0), in the variant Cassandra ships,
/// whose tail bytes are widened as signed bytes (so a byte >= 0x80 sign-extends into the higher bits before the xor).
/// Drivers must reproduce that quirk or they compute other tokens than the server for such keys.
/// </summary>
internal static class Murmur3
{
    private const ulong C1 = 0x87c37b91114253d5UL;
    private const ulong C2 = 0x4cf5ad432745937fUL;

    public static long Token(ReadOnlySpan<byte> key)
    {
        var h1 = Hash(key);

        // The partitioner reserves long.MinValue as its minimum token, so a key hashing there is mapped to MaxValue.
        return h1 == long.MinValue ? long.MaxValue : h1;
    }

    private static long Hash(ReadOnlySpan<byte> data)
    {
        ulong h1 = 0;
        ulong h2 = 0;
        var blocks = data.Length / 16;
        for (var i = 0; i < blocks; i++)
        {
            var k1 = BinaryPrimitives.ReadUInt64LittleEndian(data[(i * 16)..]);
            var k2 = BinaryPrimitives.ReadUInt64LittleEndian(data[((i * 16) + 8)..]);

            k1 *= C1;
            k1 = ulong.RotateLeft(k1, 31);
            k1 *= C2;
            h1 ^= k1;
            h1 = ulong.RotateLeft(h1, 27);
            h1 += h2;
            h1 = (h1 * 5) + 0x52dce729;

            k2 *= C2;
            k2 = ulong.RotateLeft(k2, 33);
            k2 *= C1;
            h2 ^= k2;
            h2 = ulong.RotateLeft(h2, 31);
            h2 += h1;
            h2 = (h2 * 5) + 0x38495ab5;
        }

        var tail = data[(blocks * 16)..];
        ulong t1 = 0;
        ulong t2 = 0;
        for (var i = tail.Length - 1; i >= 8; i--)
        {
            t2 ^= (ulong)(long)(sbyte)tail[i] << ((i - 8) * 8);
        }

        for (var i = Math.Min(tail.Length, 8) - 1; i >= 0; i--)
        {
            t1 ^= (ulong)(long)(sbyte)tail[i] << (i * 8);
        }

        if (tail.Length > 8)
        {
            t2 *= C2;
            t2 = ulong.RotateLeft(t2, 33);
            t2 *= C1;
            h2 ^= t2;
        }

        if (tail.Length > 0)
        {
            t1 *= C1;
            t1 = ulong.RotateLeft(t1, 31);
            t1 *= C2;
            h1 ^= t1;
        }

        h1 ^= (ulong)data.Length;
        h2 ^= (ulong)data.Length;
        h1 += h2;
        h2 += h1;
        h1 = Mix(h1);
        h2 = Mix(h2);
        h1 += h2;
        return (long)h1;
    }

    private static ulong Mix(ulong k)
    {
        k ^= k >> 33;
        k *= 0xff51afd7ed558ccdUL;
        k ^= k >> 33;
        k *= 0xc4ceb9fe1a85ec53UL;
        k ^= k >> 33;
        return k;
    }
}

/// <summary>Scylla's shard of a token (biased-token-round-robin, as announced by SCYLLA_SHARDING_ALGORITHM).</summary>
internal static class ScyllaSharding
{
    public static int ShardOf(long token, int shardCount, int ignoreMsb)
    {
        // Shift the signed token range onto [0, 2^64), drop the ignored high bits, then scale into [0, shardCount).
        var z = (ulong)unchecked(token + long.MinValue) << ignoreMsb;
        return (int)(((UInt128)z * (ulong)shardCount) >> 64);
    }
}
