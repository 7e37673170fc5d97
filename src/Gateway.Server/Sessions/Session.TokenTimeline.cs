using Gateway.Protocol;
using Gateway.WebSockets;

namespace Gateway.Server.Sessions;

/// <summary>
/// Token timeline: TokenExpiring some time before expiry, close 4001 after the grace period. A successful
/// RefreshToken replaces the timeline. One entry on the connection's timer wheel, rescheduled in place: no timer,
/// task or token source per connection.
/// </summary>
internal sealed partial class Session
{
    private readonly TimerWheelEntry _tokenTimer;

    // Guarded by _sync: the current token's expiry, the instant TokenExpiring is due, and the close deadline, all Unix
    // ms; whether TokenExpiring went out.
    private long _tokenExpiresAt;
    private long _tokenWarnAt;
    private long _tokenCloseAt;
    private bool _tokenWarned;

    private void ScheduleTokenTimeline(long expiresAt)
    {
        var o = _services.Options;
        long now = _services.Time.GetUtcNow().ToUnixTimeMilliseconds();
        long remaining = expiresAt - now;
        long lead = Math.Min(o.TokenRefreshLeadSeconds * 1000L, Math.Max(0, remaining / 3));
        long warnAt = expiresAt - lead;
        lock (_sync)
        {
            _tokenExpiresAt = expiresAt;
            _tokenWarnAt = warnAt;
            _tokenCloseAt = expiresAt + (o.TokenGraceSeconds * 1000L);
            _tokenWarned = false;
        }

        ScheduleTokenTimer(warnAt - now);
    }

    private void ScheduleTokenTimer(long dueInMs)
    {
        Connection.Timers.Schedule(_tokenTimer, TimeSpan.FromMilliseconds(Math.Max(0, dueInMs)));

        // Dispose sets _closed, then cancels: checking after scheduling means a schedule racing with Dispose is undone
        // here, so a dead session is never kept alive by a deadline hours away.
        if (Volatile.Read(ref _closed) != 0)
        {
            Connection.Timers.Cancel(_tokenTimer);
        }
    }

    /// <summary>The token timer fired: warn, or close, or (after a refresh raced with the tick) wait some more.</summary>
    private void OnTokenTimer()
    {
        if (Volatile.Read(ref _closed) != 0 || Connection.Closing.IsCancellationRequested)
        {
            return;
        }

        long now = _services.Time.GetUtcNow().ToUnixTimeMilliseconds();
        long expiresAt, closeAt, wakeAt;
        bool warn = false, close = false;
        lock (_sync)
        {
            expiresAt = _tokenExpiresAt;
            closeAt = _tokenCloseAt;
            if (!_tokenWarned && now >= _tokenWarnAt)
            {
                _tokenWarned = warn = true;
            }
            else if (_tokenWarned && now >= closeAt)
            {
                close = true;
            }

            wakeAt = _tokenWarned ? closeAt : _tokenWarnAt;
        }

        if (close)
        {
            Connection.Close(CloseCodes.TokenExpired, "token expired");
            return;
        }

        if (warn)
        {
            var frame = OutboundFrame.Rent(32);
            ServerFrameWriter.WriteTokenExpiring(frame, expiresAt, closeAt);
            Enqueue(frame);
        }

        // A refresh may have rescheduled the entry meanwhile; scheduling again only moves it to the current deadline.
        ScheduleTokenTimer(wakeAt - now);
    }
}
