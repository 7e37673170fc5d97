using Gateway.Domain.Ports;
using Gateway.Protocol;
using Gateway.Server.Sessions;
using Gateway.WebSockets;

namespace Gateway.Server.Fanout;

/// <summary>
/// One session's subscription to one chat, and the catch-up state machine of ARCHITECTURE.md §2.4.
/// </summary>
/// <remarks>
/// <para>The subscription is registered for live events BEFORE history is read, so nothing committed after the
/// subscribe can be missed. While catching up, live events are not buffered: only the highest seq seen is kept
/// (<c>_pendingMax</c>), because the store already holds every message the bus carried (the write service
/// publishes after the durable write). The catch-up loop pages history after <c>_last</c> until it reaches the
/// head and nothing newer was announced, then flips to live under the lock, so no live frame can slip in
/// between the last history frame and <see cref="FrameType.CaughtUp"/>.</para>
/// <para>Live: seq ≤ <c>_last</c> is a duplicate and dropped; seq = <c>_last</c>+1 is enqueued; anything higher
/// is a hole (possible when the bus loses or reorders, e.g. across pods) and sends the subscription back to
/// catch-up, which re-reads the missing range from the store. Every frame of this chat is enqueued under
/// <c>_lock</c>, so per-chat order on the wire is seq order.</para>
/// </remarks>
internal sealed class ChatSubscription
{
    private readonly object _lock = new();
    private State _state = State.CatchingUp;
    private ulong _last;
    private ulong _pendingMax;
    private ulong _sentMax;
    private bool _caughtUpSent;
    private IDisposable? _interest;
    private bool _interestReleased;

    // For gateway.catchup.duration and .size: when the Subscribe was handled, and history frames sent before CaughtUp.
    private readonly long _subscribedAt = System.Diagnostics.Stopwatch.GetTimestamp();
    private int _catchUpMessages;

    /// <summary>Pause before re-reading a store that does not have yet what the bus announced (distributed mode: the
    /// projector lags the log by milliseconds). 5 ms: well under a human-visible delay, and at most 200 reads a second.</summary>
    private static readonly TimeSpan CatchUpRetryDelay = TimeSpan.FromMilliseconds(5);

    public ChatSubscription(Session session, string tenantId, string chatId, ulong afterSeq)
    {
        Session = session;
        TenantId = tenantId;
        ChatId = chatId;
        _last = afterSeq;
    }

    private enum State
    {
        CatchingUp,
        Live,
        Closed,
    }

    public Session Session { get; }

    public string TenantId { get; }

    public string ChatId { get; }

    public bool IsClosed
    {
        get
        {
            lock (_lock)
            {
                return _state == State.Closed;
            }
        }
    }

    /// <summary>Called on the bus dispatch loop for every committed message of the chat. Never blocks. The frame is
    /// enqueued with its wake deferred to the end of the fanout pass (<see cref="DeferredWakes"/>).</summary>
    /// <returns>True when the frame was enqueued to this session.</returns>
    public bool OnLive(ulong seq, OutboundFrame frame)
    {
        var startCatchUp = false;
        lock (_lock)
        {
            switch (_state)
            {
                case State.Live when seq == _last + 1:
                    if (!Session.TryEnqueueLive(frame, deferWake: true))
                    {
                        return false;
                    }

                    _last = seq;
                    _sentMax = seq;
                    return true;
                case State.Live when seq <= _last:
                    return false; // duplicate
                case State.Live:
                    _state = State.CatchingUp; // hole: repair from the store
                    _pendingMax = seq;
                    startCatchUp = true;
                    break;
                case State.CatchingUp:
                    _pendingMax = Math.Max(_pendingMax, seq);
                    return false;
                default:
                    return false;
            }
        }

        if (startCatchUp)
        {
            Session.StartCatchUp(this);
        }

        return false;
    }

    /// <summary>Offers an ephemeral frame (typing): only to a live subscription, and only when the session has room.</summary>
    public void OnEphemeral(OutboundFrame frame)
    {
        lock (_lock)
        {
            if (_state == State.Live)
            {
                Session.TryEnqueueEphemeral(frame);
            }
        }
    }

    /// <summary>Ends the subscription; no frame of this chat is enqueued after this returns.</summary>
    /// <returns>False if it was already closed.</returns>
    public bool Close()
    {
        lock (_lock)
        {
            if (_state == State.Closed)
            {
                return false;
            }

            _state = State.Closed;
            return true;
        }
    }

    /// <summary>
    /// Replays history from the cursor and switches to live. Runs on the session's catch-up task, one
    /// subscription at a time; waits for room in the outbound queue instead of overflowing it.
    /// </summary>
    public async Task CatchUpAsync(IMessageHistory history, int pageSize, GatewayMetrics metrics, CancellationToken cancellationToken)
    {
        while (true)
        {
            ulong after;
            lock (_lock)
            {
                if (_state != State.CatchingUp)
                {
                    return;
                }

                after = _last;
            }

            // Head and page from one view of the store: every seq ≤ head is durable, so after a short page everything
            // up to head was seen (anything missing from the page has expired).
            var (head, page) = await history.ReadCatchUpAsync(TenantId, ChatId, after, pageSize, cancellationToken).ConfigureAwait(false);
            foreach (var message in page)
            {
                await Session.WaitForRoomAsync(cancellationToken).ConfigureAwait(false);
                var frame = MessageFrames.Build(message);
                try
                {
                    lock (_lock)
                    {
                        if (_state != State.CatchingUp)
                        {
                            return;
                        }

                        if (message.Seq <= _last)
                        {
                            continue;
                        }

                        if (!Session.TryEnqueueLive(frame))
                        {
                            return; // the session is closing (slow consumer or gone)
                        }

                        _last = message.Seq;
                        _sentMax = message.Seq;
                        _catchUpMessages++;
                    }
                }
                finally
                {
                    frame.Release();
                }

                metrics.CatchUpMessages.Add(1);
            }

            if (page.Count >= pageSize)
            {
                continue;
            }

            bool retryLater;
            lock (_lock)
            {
                if (_state != State.CatchingUp)
                {
                    return;
                }

                var progressed = page.Count > 0 || head > _last;
                _last = Math.Max(_last, head);
                if (_pendingMax > _last)
                {
                    // Committed while we read: read again. If this read brought nothing new, the store does not have yet
                    // what the bus announced (a distributed history store lags the log by milliseconds): pause briefly
                    // instead of spinning on it.
                    retryLater = !progressed;
                }
                else
                {
                    _state = State.Live;
                    if (!_caughtUpSent)
                    {
                        // The server's position, not the client's: below the cursor only when the client has seen seqs
                        // this store never had (e.g. restored from an older backup), which PROTOCOL.md §8 tells it to check.
                        _caughtUpSent = true;
                        Session.EnqueueCaughtUp(ChatId, Math.Max(head, _sentMax));
                        GatewayMetrics.CatchUpDone(_subscribedAt, _catchUpMessages);
                    }

                    return;
                }
            }

            if (retryLater)
            {
                await Task.Delay(CatchUpRetryDelay, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Re-checks the store for events the bus may have lost (after a reconnect of a distributed bus): a live
    /// subscription goes back to catch-up, which reads after its position and returns to live.</summary>
    public void Resync()
    {
        lock (_lock)
        {
            if (_state != State.Live)
            {
                return;
            }

            _state = State.CatchingUp;
        }

        Session.StartCatchUp(this);
    }

    /// <summary>Keeps the bus interest handle of this subscription (distributed bus). False when the subscription was
    /// removed meanwhile: the caller disposes the handle.</summary>
    public bool AttachInterest(IDisposable handle)
    {
        lock (_lock)
        {
            if (_interestReleased)
            {
                return false;
            }

            _interest = handle;
            return true;
        }
    }

    /// <summary>Gives the bus interest back (once).</summary>
    public void ReleaseInterest()
    {
        IDisposable? handle;
        lock (_lock)
        {
            _interestReleased = true;
            handle = _interest;
            _interest = null;
        }

        handle?.Dispose();
    }
}
