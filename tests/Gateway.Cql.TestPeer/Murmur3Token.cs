using System.Buffers.Binary;

namespace Gateway.Cql.TestPeer;

/// <summary>
/// The Murmur3 partitioner's token, as Cassandra computes it: the first 64-bit half of MurmurHash3 x64_128 (seed 0),
/// including the partitioner's quirk of sign-extending the tail bytes (they are Java bytes there), so tokens agree with
/// real clusters and with drivers' token-aware routing.
/// </summary>
public static class Murmur3Token
{
    private const ulong C1 = 0x87c37b91114253d5UL;
    private const ulong C2 = 0x4cf5ad432745937fUL;

    /// <summary>The token of one serialized partition key.</summary>
    public static long Token(ReadOnlySpan<byte> key)
    {
        var h = Hash(key);
        // The partitioner never hands out Long.MIN_VALUE as a token: it is the ring's minimum marker.
        return h == long.MinValue ? long.MaxValue : h;
    }

    /// <summary>The token of a partition key made of the given serialized components (composite when more than one).</summary>
    public static long Token(IReadOnlyList<byte[]> components)
    {
        ArgumentNullException.ThrowIfNull(components);
        return Token(RoutingKey(components));
    }

    /// <summary>
    /// The routing key of a partition key: a lone component as is; several as, per component, a 2-byte big-endian
    /// length, the bytes and a 0x00 end-of-component byte.
    /// </summary>
    public static byte[] RoutingKey(IReadOnlyList<byte[]> components)
    {
        ArgumentNullException.ThrowIfNull(components);
        if (components.Count == 1)
        {
            return components[0];
        }

        var size = 0;
        foreach (var c in components)
        {
            size += c.Length + 3;
        }

        var result = new byte[size];
        var at = 0;
        foreach (var c in components)
        {
            BinaryPrimitives.WriteUInt16BigEndian(result.AsSpan(at), (ushort)c.Length);
            c.CopyTo(result, at + 2);
            at += c.Length + 3;
        }

        return result;
    }

    /// <summary>
    /// The shard that owns a token on a Scylla node, per the "biased-token-round-robin" sharding algorithm: the token
    /// is shifted to unsigned, its top <paramref name="ignoreMsb"/> bits dropped, and the rest scaled onto the shards.
    /// </summary>
    public static int ShardOf(long token, int shards, int ignoreMsb = 12)
    {
        if (shards <= 1)
        {
            return 0;
        }

        var z = unchecked((ulong)token + 0x8000000000000000UL) << ignoreMsb;
        return (int)(((UInt128)z * (ulong)shards) >> 64);
    }

    private static long Hash(ReadOnlySpan<byte> key)
    {
        ulong h1 = 0, h2 = 0;
        var blocks = key.Length / 16;
        for (var i = 0; i < blocks; i++)
        {
            var k1 = BinaryPrimitives.ReadUInt64LittleEndian(key[(i * 16)..]);
            var k2 = BinaryPrimitives.ReadUInt64LittleEndian(key[((i * 16) + 8)..]);
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

        var tail = key[(blocks * 16)..];
        ulong t1 = 0, t2 = 0;
        // Each tail byte is widened as a signed value (sign extension), which is what Cassandra's variant does.
        for (var i = tail.Length - 1; i >= 8; i--)
        {
            t2 ^= unchecked((ulong)(long)(sbyte)tail[i]) << ((i - 8) * 8);
        }

        for (var i = Math.Min(tail.Length, 8) - 1; i >= 0; i--)
        {
            t1 ^= unchecked((ulong)(long)(sbyte)tail[i]) << (i * 8);
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

        h1 ^= (ulong)key.Length;
        h2 ^= (ulong)key.Length;
        h1 += h2;
        h2 += h1;
        h1 = Mix(h1);
        h2 = Mix(h2);
        h1 += h2;
        return unchecked((long)h1);
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
