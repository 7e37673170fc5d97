using System.Buffers;

namespace Gateway.TestUtilities;

/// <summary>Builds multi-segment <see cref="ReadOnlySequence{T}"/>s, to test parsers against every split.</summary>
public static class TestSequence
{
    /// <summary>A sequence made of the given segments, in order (empty segments allowed).</summary>
    public static ReadOnlySequence<byte> Create(params byte[][] segments)
    {
        if (segments.Length == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }

        var first = new Segment(segments[0], 0);
        var last = first;
        for (int i = 1; i < segments.Length; i++)
        {
            last = last.Append(segments[i]);
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    /// <summary><paramref name="data"/> split at the given offsets (ascending, each within 0..Length).</summary>
    public static ReadOnlySequence<byte> Split(byte[] data, params int[] cuts)
    {
        var parts = new List<byte[]>();
        int from = 0;
        foreach (int cut in cuts)
        {
            parts.Add(data[from..cut]);
            from = cut;
        }

        parts.Add(data[from..]);
        return Create([.. parts]);
    }

    /// <summary>One segment per byte.</summary>
    public static ReadOnlySequence<byte> Bytewise(byte[] data) =>
        data.Length == 0 ? ReadOnlySequence<byte>.Empty : Create([.. data.Select(b => new[] { b })]);

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(byte[] data, long runningIndex)
        {
            Memory = data;
            RunningIndex = runningIndex;
        }

        public Segment Append(byte[] data)
        {
            var next = new Segment(data, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
