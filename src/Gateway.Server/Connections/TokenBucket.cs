using System.Diagnostics;

namespace Gateway.Server.Connections;

/// <summary>
/// A classic token bucket: <c>burst</c> tokens at most, refilled at <c>ratePerSecond</c>. Thread-safe (a tiny
/// uncontended lock: buckets are per user or per IP) and allocation-free.
/// </summary>
public sealed class TokenBucket
{
    private readonly object _lock = new();
    private readonly double _ratePerTick;
    private readonly double _burst;
    private double _tokens;
    private long _last;

    /// <summary>Creates a full bucket.</summary>
    /// <param name="ratePerSecond">Refill rate; must be positive.</param>
    /// <param name="burst">Capacity; at least 1.</param>
    /// <param name="nowTimestamp">Current timestamp in <paramref name="timestampFrequency"/> ticks per second.</param>
    /// <param name="timestampFrequency">Ticks per second of the timestamps passed in (Stopwatch's by default).</param>
    public TokenBucket(double ratePerSecond, int burst, long nowTimestamp, long timestampFrequency = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ratePerSecond);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(burst);
        var frequency = timestampFrequency > 0 ? timestampFrequency : Stopwatch.Frequency;
        _ratePerTick = ratePerSecond / frequency;
        _burst = burst;
        _tokens = burst;
        _last = nowTimestamp;
        Frequency = frequency;
    }

    /// <summary>Ticks per second of the timestamps this bucket expects.</summary>
    public long Frequency { get; }

    /// <summary>True when the bucket is full at <paramref name="nowTimestamp"/> (an idle key can be forgotten).</summary>
    public bool IsFull(long nowTimestamp)
    {
        lock (_lock)
        {
            return _tokens + ((nowTimestamp - _last) * _ratePerTick) >= _burst;
        }
    }

    /// <summary>Takes one token. When none is left, returns false and how long until one will be.</summary>
    public bool TryTake(long nowTimestamp, out TimeSpan retryAfter)
    {
        lock (_lock)
        {
            if (nowTimestamp > _last)
            {
                _tokens = Math.Min(_burst, _tokens + ((nowTimestamp - _last) * _ratePerTick));
                _last = nowTimestamp;
            }

            if (_tokens >= 1)
            {
                _tokens -= 1;
                retryAfter = TimeSpan.Zero;
                return true;
            }

            retryAfter = TimeSpan.FromSeconds((1 - _tokens) / (_ratePerTick * Frequency));
            return false;
        }
    }
}
