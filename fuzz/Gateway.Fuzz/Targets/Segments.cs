using System.Buffers;

namespace Gateway.Fuzz;

/// <summary>
/// Multi-segment views of one input, the way a pipe hands over bytes that arrived in several reads. Every parser
/// under test must answer the same for every segmentation, so each harness compares a few of them with the
/// single-segment answer.
/// </summary>
public static class Segments
{
    /// <summary><paramref name="data"/> split at <paramref name="cuts"/> (ascending, clamped into 0..Length).</summary>
    public static ReadOnlySequence<byte> Split(ReadOnlySpan<byte> data, params ReadOnlySpan<int> cuts)
    {
        if (cuts.IsEmpty)
        {
            return new ReadOnlySequence<byte>(data.ToArray());
        }

        Segment? first = null;
        Segment? last = null;
        int from = 0;
        for (int i = 0; i <= cuts.Length; i++)
        {
            int to = i < cuts.Length ? Math.Clamp(cuts[i], from, data.Length) : data.Length;

            // Each piece is its own array, so reading past a segment's end cannot see the neighbour's bytes.
            byte[] piece = data[from..to].ToArray();
            last = last is null ? new Segment(piece, 0) : last.Append(piece);
            first ??= last;
            from = to;
        }

        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    /// <summary>One segment per byte for the first <paramref name="count"/> bytes, the rest in one segment.</summary>
    public static ReadOnlySequence<byte> Bytewise(ReadOnlySpan<byte> data, int count)
    {
        count = Math.Min(count, data.Length);
        Span<int> cuts = stackalloc int[count];
        for (int i = 0; i < count; i++)
        {
            cuts[i] = i + 1;
        }

        return Split(data, cuts);
    }

    /// <summary>
    /// Cut points derived from the input itself (a cheap hash), so the same input always gets the same splits and a
    /// crash reproduces, while different inputs exercise different boundaries.
    /// </summary>
    public static (int First, int Second) CutsFor(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return (0, 0);
        }

        uint h = 2166136261; // FNV-1a offset basis
        foreach (byte b in data)
        {
            h = (h ^ b) * 16777619; // FNV-1a prime
        }

        int a = (int)(h % (uint)(data.Length + 1));
        int b2 = (int)((h >> 16) % (uint)(data.Length + 1));
        return a <= b2 ? (a, b2) : (b2, a);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
