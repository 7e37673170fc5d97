using System.Buffers;
using System.Text;
using Gateway.Domain.Ports;
using Gateway.Protocol;
using Gateway.Server.Auth;
using Gateway.Server.Connections;
using Gateway.Server.Fanout;
using Gateway.Server.Logging;
using Gateway.WebSockets;

namespace Gateway.Server.Sessions;

/// <summary>Everything a session needs from the host, shared by all sessions.</summary>
internal sealed record SessionServices(
    IWriteService Writer,
    IMessageHistory History,
    IMembership Membership,
    ChatRegistry Registry,
    GatewayOptions Options,
    GatewayMetrics Metrics,
    TimeProvider Time,
    ILogger Logger,
    JwtAuthenticator Auth,
    UserLimits Limits)
{
    /// <summary>Slow-consumer closes are logged at most once per <see cref="GatewayOptions.SlowConsumerLogSeconds"/>: a
    /// burst of them (a broadcast outrunning many readers) would otherwise flood the log; the metric counts each one.</summary>
    public LogThrottle SlowConsumerLog { get; } = new(Time, TimeSpan.FromSeconds(Options.SlowConsumerLogSeconds));
}

/// <summary>
/// One authenticated WebSocket connection speaking <c>chatgw.v1</c>: decodes client frames, calls the write
/// service, owns the connection's subscriptions and their catch-up.
/// </summary>
/// <remarks>
/// Threading: <see cref="OnMessageAsync"/> runs on the connection's receive loop, one frame at a time.
/// Live frames arrive from the bus dispatch loop through <see cref="ChatSubscription.OnLive"/>; send
/// completions arrive on thread-pool threads. The subscription table, the catch-up queue and the token timeline are
/// guarded by one lock (<c>Sync</c>); each subscription guards its own state. All output goes through <see cref="WebSocketConnection.TryEnqueue"/>,
/// which is thread-safe; the connection's single writer pump does the socket writes.
/// </remarks>
internal sealed partial class Session : IWebSocketMessageHandler
{
    private readonly SessionServices _services;
    private readonly TimerWheelEntry _tokenTimer;
    private int _closed;

    // The user's entry in the connection limiter: the state of its rate limits, shared by the user's connections here.
    private readonly ConnectionLimiter.User _user;

    // Guarded by Sync. A single field while there is at most one subscription: no dictionary for an idle connection.
    private SubscriptionTable _subs;

    // Created by the first Send (on the receive loop, so without a race): a connection that only listens never pays
    // for it (SemaphoreSlim + its lock object ≈ 80 B).
    private SemaphoreSlim? _sendSlots;

    // Catch-up runs one chat at a time: subscriptions waiting for their turn, and whether a run is under way. Guarded
    // by Sync. Nothing is held once the runs are over (a chain of continuations would keep its last tasks).
    private Queue<ChatSubscription>? _catchUpQueue;
    private bool _catchUpRunning;

    // Token timeline (see ScheduleTokenTimeline), guarded by Sync: the current token's expiry, the
    // instant TokenExpiring is due, and the close deadline, all Unix ms; whether TokenExpiring went out.
    private long _tokenExpiresAt;
    private long _tokenWarnAt;
    private long _tokenCloseAt;
    private bool _tokenWarned;

    /// <summary>A session admitted by <see cref="ConnectionLimiter.TryAdmitUser"/>: <paramref name="user"/> is the entry it
    /// returned; the caller gives the slot back when the connection ends.</summary>
    public Session(WebSocketConnection connection, Principal principal, string sessionId, SessionServices services,
        ConnectionLimiter.User user)
    {
        Connection = connection;
        _user = user;

        // The ids, not the principal: the session is all that stays of the handshake (the principal would be 40 B more).
        TenantId = principal.TenantId;
        UserId = principal.UserId;
        _tokenExpiresAt = principal.ExpiresAt;
        SessionId = sessionId;
        _services = services;
        _tokenTimer = new TimerWheelEntry(connection.Timers, static s => ((Session)s!).OnTokenTimer(), this);
    }

    /// <summary>A session not admitted through a <see cref="ConnectionLimiter"/> (benchmark fixtures): its rate limits are
    /// its own, not shared with the user's other sessions.</summary>
    public Session(WebSocketConnection connection, Principal principal, string sessionId, SessionServices services)
        : this(connection, principal, sessionId, services, new ConnectionLimiter.User())
    {
    }

    public WebSocketConnection Connection { get; }

    public string SessionId { get; }

    public string TenantId { get; }

    public string UserId { get; }

    /// <summary>How many chats this session is subscribed to (for tests and diagnostics).</summary>
    internal int SubscriptionCount
    {
        get
        {
            lock (Sync)
            {
                return _subs.Count;
            }
        }
    }

    /// <summary>
    /// The session's one lock, for the subscription table, the catch-up queue and the token timeline. It is the token
    /// timer's wheel entry, an object the session owns and never exposes (the wheel locks its own object, not entries),
    /// rather than a lock object of its own (24 B per connection): each section guarded is a few field updates that
    /// call out to nothing, so the three sharing a lock never wait on each other for long.
    /// </summary>
    private object Sync => _tokenTimer;

    /// <summary>Sends Hello and arms the token timeline. Call before <see cref="WebSocketConnection.RunAsync"/>.</summary>
    public void Start()
    {
        var o = _services.Options;

        // Nothing else runs yet: the expiry set by the constructor is read without the lock.
        long expiresAt = _tokenExpiresAt;
        var frame = OutboundFrame.Rent(128);
        ServerFrameWriter.WriteHello(frame, SessionId, TenantId, UserId, (uint)o.MaxMessageBytes, (uint)o.MaxContentBytes,
            (uint)o.HeartbeatSeconds, expiresAt);
        Enqueue(frame);
        ScheduleTokenTimeline(expiresAt);
    }

    /// <inheritdoc/>
    public ValueTask OnMessageAsync(WebSocketConnection connection, ReadOnlySequence<byte> payload)
    {
        switch (ClientFrameReader.TryRead(payload, out var frame))
        {
            case ReadStatus.Ok:
                break;
            case ReadStatus.UnknownType:
                SendError(frame.RequestId, ErrorCode.UnknownFrameType, $"unknown frame type {(int)frame.Type}");
                return default;
            case ReadStatus.Invalid:
                SendError(frame.RequestId, ErrorCode.InvalidFrame, $"invalid fields for frame type {(int)frame.Type}");
                return default;
            default:
                Connection.Close(CloseCodes.InvalidPayload, "not a chatgw.v1 frame");
                return default;
        }

        return frame.Type switch
        {
            FrameType.Send => HandleSend(frame),
            FrameType.Subscribe => HandleSubscribe(frame),
            FrameType.Unsubscribe => HandleUnsubscribe(frame),
            FrameType.History => HandleHistory(frame),
            FrameType.Typing => HandleTyping(frame),
            FrameType.RefreshToken => HandleRefreshToken(frame),
            _ => default,
        };
    }

    /// <summary>Ends every subscription; called once the connection is over.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        Connection.Timers.Cancel(_tokenTimer);

        ChatSubscription[] all;
        lock (Sync)
        {
            all = _subs.TakeAll();
        }

        foreach (var s in all)
        {
            s.Close();
            _services.Registry.Remove(s);
        }
    }

    /// <summary>Seals and enqueues a frame built for this session (takes over the caller's reference).</summary>
    private bool Enqueue(OutboundFrame frame)
    {
        try
        {
            return TryEnqueueLive(frame.Seal());
        }
        finally
        {
            frame.Release();
        }
    }

    /// <summary>Enqueues a shared frame (the caller keeps its reference). A full queue closes the connection
    /// with 4002: the client reconnects and resumes from its cursors, so nothing is lost.</summary>
    /// <param name="frame">A sealed frame.</param>
    /// <param name="deferWake">Leave the writer asleep until the fanout pass ends (<see cref="DeferredWakes"/>).</param>
    internal bool TryEnqueueLive(OutboundFrame frame, bool deferWake = false)
    {
        if (deferWake)
        {
            if (Connection.TryEnqueueDeferred(frame, out var wakeNeeded))
            {
                if (wakeNeeded)
                {
                    DeferredWakes.Add(Connection);
                }

                return true;
            }
        }
        else if (Connection.TryEnqueue(frame))
        {
            return true;
        }

        if (!Connection.Closing.IsCancellationRequested)
        {
            // Which bound was hit: the frame count or the bytes (a fixed label value each, no allocation).
            _services.Metrics.SlowConsumerCloses.Add(1, new KeyValuePair<string, object?>(
                "reason", Connection.FramesQueued >= _services.Options.MaxOutboundFrames ? "frames" : "bytes"));
            if (_services.SlowConsumerLog.TryEnter(out var suppressed))
            {
                _services.Logger.LogWarning("Session {Session} ({User}) closed as slow consumer (4002); {Suppressed} more such closes not logged since the last line",
                    SessionId, UserId, suppressed);
            }

            Connection.Close(CloseCodes.SlowConsumer, "slow consumer: resume from your cursors");
        }

        return false;
    }

    /// <summary>Waits until the outbound queue is at most half full, so catch-up leaves room for live traffic.</summary>
    internal ValueTask WaitForRoomAsync(CancellationToken cancellationToken)
    {
        var o = _services.Options;
        return Connection.FramesQueued * 2 <= o.MaxOutboundFrames && Connection.BytesQueued * 2 <= o.MaxOutboundBytes
            ? default
            : WaitSlowAsync(cancellationToken);

        async ValueTask WaitSlowAsync(CancellationToken ct)
        {
            // The writer pump drains the queue at socket speed; a short poll keeps this off the hot path
            // (only a session replaying more history than half its queue ever gets here).
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, Connection.Closing);
            while (Connection.FramesQueued * 2 > o.MaxOutboundFrames || Connection.BytesQueued * 2 > o.MaxOutboundBytes)
            {
                await Task.Delay(2, linked.Token).ConfigureAwait(false);
            }
        }
    }

    internal void EnqueueCaughtUp(string chatId, ulong seq)
    {
        var frame = OutboundFrame.Rent(96);
        ServerFrameWriter.WriteCaughtUp(frame, chatId, seq);
        Enqueue(frame);
    }

    /// <summary>Queues a catch-up run. Runs are serialized so one session replays one chat at a time.</summary>
    internal void StartCatchUp(ChatSubscription subscription)
    {
        lock (Sync)
        {
            if (_catchUpRunning)
            {
                (_catchUpQueue ??= new Queue<ChatSubscription>()).Enqueue(subscription);
                return;
            }

            _catchUpRunning = true;
        }

        _ = RunCatchUpsAsync(subscription);
    }

    /// <summary>Runs <paramref name="first"/>'s catch-up, then every one queued meanwhile, on the thread pool.</summary>
    private async Task RunCatchUpsAsync(ChatSubscription first)
    {
        // Off the caller's stack (the receive loop): catch-up reads the store and may wait for room in the queue.
        await Task.Yield();
        var next = first;
        while (true)
        {
            await RunCatchUpAsync(next).ConfigureAwait(false);
            lock (Sync)
            {
                if (_catchUpQueue is null || !_catchUpQueue.TryDequeue(out next!))
                {
                    _catchUpQueue = null;
                    _catchUpRunning = false;
                    return;
                }
            }
        }
    }

    private async Task RunCatchUpAsync(ChatSubscription subscription)
    {
        // A history store that is briefly unreachable (a distributed writer failing over, a broker restarting) should not
        // cost the client its connection: catch-up resumes from where it stopped, after a pause. 5 attempts with 0.2 s,
        // 0.4 s, … pauses ride out about 3 s of outage; beyond that the client is told to resume from its cursors.
        const int Attempts = 5;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await subscription.CatchUpAsync(_services.History, _services.Options.CatchUpPageSize, _services.Metrics, Connection.Closing)
                    .ConfigureAwait(false);
                return;
            }
            catch (OperationCanceledException)
            {
                return; // connection closing
            }
            catch (Exception e) when (attempt < Attempts && !Connection.Closing.IsCancellationRequested)
            {
                _services.Logger.LogWarning(e, "Catch-up of {Chat} failed for session {Session}; retrying", subscription.ChatId, SessionId);
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), Connection.Closing).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
            catch (Exception e)
            {
                _services.Logger.LogError(e, "Catch-up of {Chat} failed for session {Session}", subscription.ChatId, SessionId);
                Connection.Close(CloseCodes.InternalError, "catch-up failed; resume from your cursors");
                return;
            }
        }
    }

    /// <summary>Ends a subscription on the server's initiative and tells the client why.</summary>
    internal void Revoke(ChatSubscription subscription, ErrorCode code, string reason)
    {
        lock (Sync)
        {
            _subs.RemoveExact(subscription);
        }

        _services.Registry.Remove(subscription);
        if (subscription.Close())
        {
            var frame = OutboundFrame.Rent(128);
            ServerFrameWriter.WriteRevoked(frame, subscription.ChatId, code, reason);
            Enqueue(frame);
        }
    }

    private void SendError(uint requestId, ErrorCode code, string message)
    {
        var frame = OutboundFrame.Rent(64 + message.Length * 3);
        ServerFrameWriter.WriteError(frame, requestId, code, message);
        Enqueue(frame);
    }

    /// <summary>
    /// Token timeline: TokenExpiring some time before expiry, close 4001 after the grace period. A successful
    /// RefreshToken replaces the timeline. One entry on the connection's timer wheel, rescheduled in place: no timer,
    /// task or token source per connection.
    /// </summary>
    private void ScheduleTokenTimeline(long expiresAt)
    {
        var o = _services.Options;
        long now = _services.Time.GetUtcNow().ToUnixTimeMilliseconds();
        long remaining = expiresAt - now;
        long lead = Math.Min(o.TokenRefreshLeadSeconds * 1000L, Math.Max(0, remaining / 3));
        long warnAt = expiresAt - lead;
        lock (Sync)
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
        lock (Sync)
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

    /// <summary>Offers an ephemeral frame; dropped (and counted) when the queue is half full or closing.</summary>
    internal void TryEnqueueEphemeral(OutboundFrame frame)
    {
        var o = _services.Options;
        if (Connection.FramesQueued * 2 > o.MaxOutboundFrames || Connection.BytesQueued * 2 > o.MaxOutboundBytes || !Connection.TryEnqueue(frame))
        {
            _services.Metrics.EphemeralDropped.Add(1);
        }
    }

    /// <summary>Takes a token from a per-user bucket, or answers RateLimited with the wait.</summary>
    private bool TryTakeOrRefuse(RateKind rate, uint requestId, string kind)
    {
        if (_services.Limits.TryTake(_user, rate, out var retryAfter))
        {
            return true;
        }

        _services.Metrics.RateLimited.Add(1, new KeyValuePair<string, object?>("kind", kind));
        var ms = (uint)Math.Clamp(Math.Ceiling(retryAfter.TotalMilliseconds), 1, uint.MaxValue);
        var frame = OutboundFrame.Rent(96);
        ServerFrameWriter.WriteError(frame, requestId, ErrorCode.RateLimited, $"too many {kind} requests", ms);
        Enqueue(frame);
        return false;
    }

    /// <summary>Decodes a UTF-8 slice of a frame (an id or a token) into a string that outlives the read.</summary>
    private static string DecodeUtf8(in ReadOnlySequence<byte> utf8) =>
        utf8.IsSingleSegment ? Encoding.UTF8.GetString(utf8.FirstSpan) : Encoding.UTF8.GetString(utf8.ToArray());
}
