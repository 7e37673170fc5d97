using System.Buffers;
using System.Text;
using Gateway.Protocol;
using Gateway.Server.Auth;
using Gateway.Server.Connections;
using Gateway.Server.Fanout;
using Gateway.WebSockets;

namespace Gateway.Server.Sessions;

/// <summary>
/// One authenticated WebSocket connection speaking <c>chatgw.v1</c>: decodes client frames, calls the write
/// service, owns the connection's subscriptions. To fanout it is an <see cref="ISubscriber"/> (Session.Outbound.cs).
/// </summary>
/// <remarks>
/// <para>Files: this one holds the lifetime (start, dispatch, dispose); Session.Commands.cs the client frame handlers;
/// Session.Outbound.cs the outbound queue (what fanout calls); Session.TokenTimeline.cs the token expiry timeline;
/// Session.RateLimits.cs the refusal of requests over the user's rates.</para>
/// <para>Threading: <see cref="OnMessageAsync"/> runs on the connection's receive loop, one frame at a time.
/// Live frames arrive from the bus dispatch loop through <see cref="ChatSubscription.OnLive"/>; send
/// completions arrive on thread-pool threads. The subscription table and the token timeline are guarded by
/// <c>_sync</c>; each subscription guards its own state and <see cref="CatchUpQueue"/> its own. All output goes through
/// <see cref="WebSocketConnection.TryEnqueue"/>, which is thread-safe; the connection's single writer pump does the
/// socket writes.</para>
/// </remarks>
internal sealed partial class Session : IWebSocketMessageHandler
{
    private readonly SessionServices _services;
    private int _closed;

    // The user's entry in the connection limiter: the state of its rate limits, shared by the user's connections here.
    private readonly ConnectionLimiter.User _user;

    // The session's lock, for the subscription table and the token timeline: each section guarded is a few field
    // updates that call out to nothing, so the two sharing it never wait on each other for long. A lock of its own
    // rather than another object the session holds, so no reader has to check who else might lock that object.
    private readonly Lock _sync = new();

    // Guarded by _sync. A single field while there is at most one subscription: no dictionary for an idle connection.
    private SubscriptionTable _subs;

    // Created by the first Subscribe (on the receive loop, so without a race): a connection that never subscribes does
    // not pay for it.
    private CatchUpQueue? _catchUps;

    // Created by the first Send (on the receive loop, so without a race): a connection that only listens never pays
    // for it.
    private SemaphoreSlim? _sendSlots;

    /// <summary>A session admitted by <see cref="ConnectionLimiter.TryAdmitUser"/>: <paramref name="user"/> is the entry it
    /// returned; the caller gives the slot back when the connection ends.</summary>
    public Session(WebSocketConnection connection, Principal principal, string sessionId, SessionServices services,
        ConnectionLimiter.User user)
    {
        Connection = connection;
        _user = user;

        // The ids, not the principal: the session is all that stays of the handshake.
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
            lock (_sync)
            {
                return _subs.Count;
            }
        }
    }

    /// <summary>This session's catch-up runs, created with its first subscription.</summary>
    private CatchUpQueue CatchUps => _catchUps ??= new CatchUpQueue(this, _services.CatchUp);

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
        lock (_sync)
        {
            all = _subs.TakeAll();
        }

        foreach (var s in all)
        {
            s.Close();
            _services.Registry.Remove(s);
        }
    }

    private void SendError(uint requestId, ErrorCode code, string message)
    {
        var frame = OutboundFrame.Rent(64 + message.Length * 3);
        ServerFrameWriter.WriteError(frame, requestId, code, message);
        Enqueue(frame);
    }

    /// <summary>Decodes a UTF-8 slice of a frame (an id or a token) into a string that outlives the read.</summary>
    private static string DecodeUtf8(in ReadOnlySequence<byte> utf8) =>
        utf8.IsSingleSegment ? Encoding.UTF8.GetString(utf8.FirstSpan) : Encoding.UTF8.GetString(utf8.ToArray());
}
