namespace Gateway.Server.Connections;

/// <summary>
/// A token bucket: <c>burst</c> tokens, refilled at <c>tokensPerSecond</c>; each <see cref="TryTake"/> takes one.
/// Thread-safe, lock-free and allocation-free.
/// </summary>
/// <remarks>
/// <para>Implemented as the generic cell rate algorithm: the whole state is one <see langword="long"/>, the instant at
/// which the bucket will be full again (the "theoretical arrival time", TAT). Taking a token pushes it one interval
/// (1 / rate) further; a take is refused when that would put the TAT more than <c>burst</c> intervals ahead of now.
/// One compare-and-swap per take, no timer, and a refused take reports exactly how long until it would succeed.</para>
/// <para>Time is passed in, as a monotonic count of <see cref="TimeSpan"/> ticks (100 ns) that never goes below zero
/// (<see cref="GetTicks"/> reads one from a <see cref="TimeProvider"/>), so tests can drive the clock.</para>
/// </remarks>
public sealed class TokenBucket
{
    private readonly RateLimit _limit;

    // The instant the bucket is full again. 0 = full since the start of time: every caller's clock is >= 0.
    private long _tat;

    /// <summary>Creates a full bucket.</summary>
    /// <param name="tokensPerSecond">Refill rate; positive and finite. Fractions are fine (0.1 = one token per 10 s).</param>
    /// <param name="burst">Bucket size: how many takes may come back to back; at least 1.</param>
    public TokenBucket(double tokensPerSecond, int burst) => _limit = new RateLimit(tokensPerSecond, burst);

    // Derived rather than stored: two fields less make each bucket 16 bytes smaller.

    /// <summary>The refill rate (as represented: one token per whole number of 100 ns ticks).</summary>
    public double TokensPerSecond => (double)TimeSpan.TicksPerSecond / _limit.Interval;

    /// <summary>The bucket size.</summary>
    public int Burst => (int)(_limit.Capacity / _limit.Interval);

    /// <summary>Reads <paramref name="time"/>'s monotonic clock in <see cref="TimeSpan"/> ticks, the unit the bucket expects.</summary>
    /// <param name="time">The clock (e.g. <see cref="TimeProvider.System"/>).</param>
    public static long GetTicks(TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        return time.GetElapsedTime(0, time.GetTimestamp()).Ticks;
    }

    /// <summary>Takes one token if there is one.</summary>
    /// <param name="nowTicks">The current time (see <see cref="GetTicks"/>).</param>
    /// <param name="retryAfter">When refused: how long until a token is available (always positive); else zero.</param>
    /// <returns>True when a token was taken.</returns>
    public bool TryTake(long nowTicks, out TimeSpan retryAfter) => _limit.TryTake(ref _tat, nowTicks, out retryAfter);

    /// <summary>Tokens available at <paramref name="nowTicks"/> (0 to <see cref="Burst"/>).</summary>
    /// <param name="nowTicks">The current time (see <see cref="GetTicks"/>).</param>
    public int Available(long nowTicks)
    {
        long used = Math.Max(0, Volatile.Read(ref _tat) - nowTicks);
        return (int)((_limit.Capacity - used) / _limit.Interval);
    }

    /// <summary>True when the bucket is full at <paramref name="nowTicks"/>, i.e. it holds no memory of past takes and a
    /// fresh bucket would behave the same (keyed owners can then drop it).</summary>
    /// <param name="nowTicks">The current time (see <see cref="GetTicks"/>).</param>
    public bool IsFull(long nowTicks) => Volatile.Read(ref _tat) <= nowTicks;
}
