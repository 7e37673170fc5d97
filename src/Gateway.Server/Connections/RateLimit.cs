namespace Gateway.Server.Connections;

/// <summary>
/// A token-bucket policy (the generic cell rate algorithm of <see cref="TokenBucket"/>) without the state: the caller
/// keeps each bucket's state, one <see langword="long"/> (the instant the bucket is full again), wherever it likes, so
/// many small buckets cost 8 bytes each instead of an object each. Immutable; <see cref="TryTake"/> is thread-safe and
/// lock-free on the caller's field.
/// </summary>
internal readonly struct RateLimit
{
    /// <summary>Creates the policy of a bucket of <paramref name="burst"/> tokens refilled at <paramref name="tokensPerSecond"/>.</summary>
    /// <param name="tokensPerSecond">Refill rate; positive and finite. Fractions are fine (0.1 = one token per 10 s).</param>
    /// <param name="burst">Bucket size: how many takes may come back to back; at least 1.</param>
    public RateLimit(double tokensPerSecond, int burst)
    {
        if (!double.IsFinite(tokensPerSecond) || tokensPerSecond <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(tokensPerSecond), tokensPerSecond, "The rate must be positive and finite.");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(burst, 1);

        // At most 10^7 tokens per second can be told apart with 100 ns ticks; one tick is the floor.
        Interval = Math.Max(1, (long)Math.Round(TimeSpan.TicksPerSecond / tokensPerSecond));
        Capacity = checked(Interval * burst);
    }

    /// <summary>Ticks (100 ns) per token: 1 / rate.</summary>
    public long Interval { get; }

    /// <summary>Ticks of credit a full bucket holds: burst × <see cref="Interval"/>.</summary>
    public long Capacity { get; }

    /// <summary>
    /// Takes one token from the bucket whose state is <paramref name="tat"/> (0 = full since the start of time: every
    /// clock passed in is at least 0). Taking pushes the state one interval further; a take is refused when that would
    /// put it more than the capacity ahead of now. One compare-and-swap per take.
    /// </summary>
    /// <param name="tat">The bucket's state: the instant it is full again, in ticks.</param>
    /// <param name="nowTicks">The current time (see <see cref="TokenBucket.GetTicks"/>).</param>
    /// <param name="retryAfter">When refused: how long until a token is available (always positive); else zero.</param>
    /// <returns>True when a token was taken.</returns>
    public bool TryTake(ref long tat, long nowTicks, out TimeSpan retryAfter)
    {
        while (true)
        {
            long current = Volatile.Read(ref tat);
            long next = Math.Max(current, nowTicks) + Interval;
            long ahead = next - nowTicks;
            if (ahead > Capacity)
            {
                // At nowTicks + (ahead - capacity) the same take would land exactly on the capacity and succeed.
                retryAfter = TimeSpan.FromTicks(ahead - Capacity);
                return false;
            }

            if (Interlocked.CompareExchange(ref tat, next, current) == current)
            {
                retryAfter = TimeSpan.Zero;
                return true;
            }

            // Another thread took a token in between: recompute from its state.
        }
    }
}
