namespace Gateway.LoadGen.Measurement;

/// <summary>What one observation was.</summary>
public enum SeqObservation
{
    /// <summary>The next number after the highest seen.</summary>
    InOrder,

    /// <summary>Above the next number: the numbers in between are now missing.</summary>
    Gap,

    /// <summary>Below the highest seen and one of the missing numbers: it arrived late.</summary>
    Reordered,

    /// <summary>Seen before (or at or below the starting cursor).</summary>
    Duplicate,
}

/// <summary>
/// Checks one stream of dense sequence numbers (a chat's seq as one subscriber sees it, or one publisher's
/// counter): counts gaps, duplicates and reorderings, and knows which numbers are still missing. A number that
/// first leaves a gap and later arrives counts as reordered, not lost. Not thread-safe: one receive loop owns it.
/// </summary>
public sealed class SeqChecker
{
    private readonly ulong _start;
    private HashSet<ulong>? _missing;

    /// <summary>A stream whose first expected number is <paramref name="afterSeq"/> + 1.</summary>
    public SeqChecker(ulong afterSeq = 0)
    {
        _start = afterSeq;
        Highest = afterSeq;
    }

    /// <summary>Highest number seen (the cursor to resume from).</summary>
    public ulong Highest { get; private set; }

    /// <summary>Numbers accepted (in order, after a gap, or late).</summary>
    public long Received { get; private set; }

    /// <summary>Times a number arrived above the next expected one.</summary>
    public long Gaps { get; private set; }

    /// <summary>Numbers seen more than once.</summary>
    public long Duplicates { get; private set; }

    /// <summary>Numbers that arrived after a higher one.</summary>
    public long Reordered { get; private set; }

    /// <summary>Numbers below <see cref="Highest"/> that have not arrived (yet).</summary>
    public long MissingCount => _missing?.Count ?? 0;

    /// <summary>Records one number.</summary>
    public SeqObservation Observe(ulong seq)
    {
        if (seq == Highest + 1)
        {
            Highest = seq;
            Received++;
            return SeqObservation.InOrder;
        }

        if (seq > Highest)
        {
            _missing ??= [];
            for (var s = Highest + 1; s < seq; s++)
            {
                _missing.Add(s);
            }

            Highest = seq;
            Received++;
            Gaps++;
            return SeqObservation.Gap;
        }

        if (seq > _start && _missing is not null && _missing.Remove(seq))
        {
            Received++;
            Reordered++;
            return SeqObservation.Reordered;
        }

        Duplicates++;
        return SeqObservation.Duplicate;
    }

    /// <summary>How many of <c>afterSeq+1 .. head</c> never arrived: holes below the highest plus everything above it.</summary>
    public long MissingUpTo(ulong head) => MissingCount + (long)(head > Highest ? head - Highest : 0);
}
