using System.Buffers;

namespace Gateway.TestUtilities;

/// <summary>
/// Builds multi-segment <see cref="ReadOnlySequence{T}"/> values from one buffer, the way a pipe hands over data
/// that arrived in several reads. Parsers must give the same answer for every split.
/// </summary>
public static class SequenceSplitter
{
    /// <summary>
    /// Splits <paramref name="data"/> at the given offsets (ascending, each in 0..Length). Equal or boundary offsets
    /// produce empty segments on purpose: pipes can hand those over too.
    /// </summary>
    public static ReadOnlySequence<byte> Split(ReadOnlyMemory<byte> data, params int[] offsets)
    {
        ArgumentNullException.ThrowIfNull(offsets);
        if (offsets.Length == 0)
        {
            return new ReadOnlySequence<byte>(data);
        }

        var previous = 0;
        TestSequenceSegment? first = null;
        TestSequenceSegment? last = null;
        foreach (var offset in offsets.Append(data.Length))
        {
            if (offset < previous || offset > data.Length)
            {
                throw new ArgumentOutOfRangeException(nameof(offsets), "Offsets must be ascending and within the data.");
            }

            // Copy each piece so a parser that reads past its segment's end cannot see the neighbour's bytes.
            var piece = data[previous..offset].ToArray();
            last = last is null ? new TestSequenceSegment(piece) : last.Append(piece);
            first ??= last;
            previous = offset;
        }

        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    /// <summary>Every two-segment split of <paramref name="data"/>: one per offset 0..Length.</summary>
    public static IEnumerable<ReadOnlySequence<byte>> AllTwoWaySplits(ReadOnlyMemory<byte> data)
    {
        for (var i = 0; i <= data.Length; i++)
        {
            yield return Split(data, i);
        }
    }

    /// <summary>Every three-segment split of <paramref name="data"/>: one per offset pair i ≤ j.</summary>
    public static IEnumerable<ReadOnlySequence<byte>> AllThreeWaySplits(ReadOnlyMemory<byte> data)
    {
        for (var i = 0; i <= data.Length; i++)
        {
            for (var j = i; j <= data.Length; j++)
            {
                yield return Split(data, i, j);
            }
        }
    }
}

/// <summary>A linked segment of a test <see cref="ReadOnlySequence{T}"/>.</summary>
public sealed class TestSequenceSegment : ReadOnlySequenceSegment<byte>
{
    /// <summary>Creates the first segment of a chain.</summary>
    public TestSequenceSegment(ReadOnlyMemory<byte> memory) => Memory = memory;

    /// <summary>Appends a segment after this one and returns it.</summary>
    public TestSequenceSegment Append(ReadOnlyMemory<byte> memory)
    {
        var next = new TestSequenceSegment(memory) { RunningIndex = RunningIndex + Memory.Length };
        Next = next;
        return next;
    }
}
