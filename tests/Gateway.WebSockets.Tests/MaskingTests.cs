using System.Buffers;
using System.Runtime.InteropServices;
using Gateway.TestUtilities;
using Gateway.WebSockets.Internal;
using Xunit;

namespace Gateway.WebSockets.Tests;

public class MaskingTests
{
    private static readonly byte[] Key = [0x37, 0xFA, 0x21, 0x3D];

    private static uint KeyAsUInt(byte[] key) => MemoryMarshal.Read<uint>(key);

    /// <summary>The definition from RFC 6455 §5.3, byte by byte.</summary>
    private static byte[] Reference(byte[] data, byte[] key, int offset)
    {
        var result = (byte[])data.Clone();
        for (int i = 0; i < result.Length; i++)
        {
            result[i] ^= key[(offset + i) & 3];
        }

        return result;
    }

    private static byte[] RandomBytes(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    [Fact]
    public void Span_matches_reference_for_every_length_and_offset()
    {
        for (int length = 0; length <= 300; length++)
        {
            for (int offset = 0; offset < 4; offset++)
            {
                var data = RandomBytes(length, length * 4 + offset);
                var expected = Reference(data, Key, offset);
                int next = Masking.Apply(data, KeyAsUInt(Key), offset);
                Assert.Equal(expected, data);
                Assert.Equal((offset + length) & 3, next);
            }
        }
    }

    [Fact]
    public void Span_handles_unaligned_starts()
    {
        // Slicing at 1..7 puts the vector loads off any natural alignment.
        for (int skip = 1; skip < 8; skip++)
        {
            var data = RandomBytes(200 + skip, skip);
            var expected = Reference(data[skip..], Key, 1);
            Masking.Apply(data.AsSpan(skip), KeyAsUInt(Key), 1);
            Assert.Equal(expected, data[skip..]);
        }
    }

    [Fact]
    public void Masking_twice_restores_the_data()
    {
        var data = RandomBytes(1000, 7);
        var copy = (byte[])data.Clone();
        Masking.Apply(data, 0xDEADBEEF, 2);
        Assert.NotEqual(copy, data);
        Masking.Apply(data, 0xDEADBEEF, 2);
        Assert.Equal(copy, data);
    }

    [Fact]
    public void Sequence_carries_the_offset_across_every_two_way_split()
    {
        for (int length = 0; length <= 80; length++)
        {
            for (int cut = 0; cut <= length; cut++)
            {
                var data = RandomBytes(length, cut * 131 + length);
                var expected = Reference(data, Key, 0);
                var sequence = TestSequence.Split(data, cut);
                int next = Masking.Apply(sequence, KeyAsUInt(Key), 0);
                Assert.Equal(expected, sequence.ToArray());
                Assert.Equal(length & 3, next);
            }
        }
    }

    [Fact]
    public void Sequence_carries_the_offset_across_many_random_segments()
    {
        var random = new Random(42);
        for (int round = 0; round < 300; round++)
        {
            int length = random.Next(0, 301);
            int offset = random.Next(0, 4);
            var data = RandomBytes(length, round);
            var expected = Reference(data, Key, offset);
            var cuts = Enumerable.Range(0, random.Next(0, 8)).Select(_ => random.Next(0, length + 1)).Order().ToArray();
            var sequence = TestSequence.Split(data, cuts);
            Masking.Apply(sequence, KeyAsUInt(Key), offset);
            Assert.Equal(expected, sequence.ToArray());
        }
    }

    [Fact]
    public void Sequence_of_single_bytes_matches_reference()
    {
        var data = RandomBytes(77, 3);
        var expected = Reference(data, Key, 3);
        var sequence = TestSequence.Bytewise(data);
        Masking.Apply(sequence, KeyAsUInt(Key), 3);
        Assert.Equal(expected, sequence.ToArray());
    }
}
