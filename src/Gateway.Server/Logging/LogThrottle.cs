namespace Gateway.Server.Logging;

/// <summary>
/// At most one log line per period for an event that can come in bursts: <see cref="TryEnter"/> says whether to write
/// this one, and how many were let through silently since the last line written.
/// </summary>
internal sealed class LogThrottle(TimeProvider time, TimeSpan period)
{
    private readonly Lock _sync = new();
    private bool _any;
    private long _lastWritten;
    private int _suppressed;

    /// <summary>True when a line may be written now; <paramref name="suppressed"/> is the number of events not written since
    /// the last line (then reset).</summary>
    public bool TryEnter(out int suppressed)
    {
        lock (_sync)
        {
            var now = time.GetTimestamp();
            if (_any && time.GetElapsedTime(_lastWritten, now) < period)
            {
                _suppressed++;
                suppressed = 0;
                return false;
            }

            _any = true;
            _lastWritten = now;
            suppressed = _suppressed;
            _suppressed = 0;
            return true;
        }
    }
}
