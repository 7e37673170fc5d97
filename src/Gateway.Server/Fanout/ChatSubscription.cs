using Gateway.Domain;
using Gateway.Protocol;
using Gateway.WebSockets;

namespace Gateway.Server.Fanout;

/// <summary>
/// One subscriber's subscription to one chat, and the catch-up state machine of ARCHITECTURE.md §2.4 (its runs are
/// scheduled, one chat at a time per subscriber, by <see cref="CatchUpQueue"/>).
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
    // The subscription's own state; frames of this chat are enqueued under it, so per-chat order is seq order.
    private readonly Lock _lock = new();
    private readonly CatchUpQueue _catchUps;
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

    /// <summary>A subscription of <paramref name="catchUps"/>'s subscriber, replaying from <paramref name="afterSeq"/>.</summary>
    public ChatSubscription(CatchUpQueue catchUps, string tenantId, string chatId, ulong afterSeq)
    {
        _catchUps = catchUps;
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

    /// <summary>The connection this subscription delivers to.</summary>
    public ISubscriber Subscriber => _catchUps.Subscriber;

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
                    if (!Subscriber.TryEnqueueLiveDeferred(frame, out var wakeNeeded))
                    {
                        return false;
                    }

                    if (wakeNeeded)
                    {
                        DeferredWakes.Add(Subscriber);
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
            _catchUps.Start(this);
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
                Subscriber.TryEnqueueEphemeral(frame);
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

    /// <summary>Starts replaying history (a new subscription, after the client was answered).</summary>
    public void StartCatchUp() => _catchUps.Start(this);

    /// <summary>
    /// Ends the subscription on the server's initiative (the caller has unregistered it): the subscriber forgets it and
    /// the client is told why, unless it had ended already.
    /// </summary>
    public void Revoke(ErrorCode code, string reason)
    {
        var closed = Close();
        Subscriber.Forget(this);
        if (closed)
        {
            var frame = OutboundFrame.Rent(128);
            ServerFrameWriter.WriteRevoked(frame, ChatId, code, reason);
            EnqueueOwned(frame);
        }
    }

    /// <summary>
    /// Replays history from the cursor and switches to live. Runs on the subscriber's catch-up task, one subscription at
    /// a time; waits for room in the outbound queue instead of overflowing it. Each round: read a page, send what is
    /// new, then either read on, pause for a lagging store, or go live.
    /// </summary>
    public async Task CatchUpAsync(CatchUpSettings settings, CancellationToken cancellationToken)
    {
        while (TryGetCursor(out var after))
        {
            // Head and page from one view of the store: every seq ≤ head is durable, so after a short page everything
            // up to head was seen (anything missing from the page has expired).
            var (head, page) = await settings.History.ReadCatchUpAsync(TenantId, ChatId, after, settings.PageSize, cancellationToken)
                .ConfigureAwait(false);
            if (!await SendPageAsync(page, settings.Metrics, cancellationToken).ConfigureAwait(false))
            {
                return;
            }

            if (page.Count >= settings.PageSize)
            {
                continue;
            }

            switch (FinishRound(head, progressed: page.Count > 0))
            {
                case RoundEnd.Done:
                    return;
                case RoundEnd.RetryLater:
                    await Task.Delay(CatchUpRetryDelay, cancellationToken).ConfigureAwait(false);
                    break;
            }
        }
    }

    /// <summary>How a catch-up round that reached the store's head ended.</summary>
    private enum RoundEnd
    {
        /// <summary>Live now (CaughtUp sent), or no longer catching up.</summary>
        Done,

        /// <summary>Newer messages were announced meanwhile: read again at once.</summary>
        ReadAgain,

        /// <summary>Announced messages are not in the store yet: pause, then read again.</summary>
        RetryLater,
    }

    /// <summary>The seq to read after, while the subscription is still catching up.</summary>
    private bool TryGetCursor(out ulong after)
    {
        lock (_lock)
        {
            after = _last;
            return _state == State.CatchingUp;
        }
    }

    /// <summary>Sends the page's messages past the cursor, each once there is room. False when catch-up must stop (the
    /// subscription left catch-up, or the subscriber is closing).</summary>
    private async ValueTask<bool> SendPageAsync(IReadOnlyList<ChatMessage> page, GatewayMetrics metrics, CancellationToken cancellationToken)
    {
        foreach (var message in page)
        {
            await Subscriber.WaitForRoomAsync(cancellationToken).ConfigureAwait(false);
            var frame = MessageFrames.Build(message);
            try
            {
                lock (_lock)
                {
                    if (_state != State.CatchingUp)
                    {
                        return false;
                    }

                    if (message.Seq <= _last)
                    {
                        continue;
                    }

                    if (!Subscriber.TryEnqueueLive(frame))
                    {
                        return false; // the subscriber is closing (slow consumer or gone)
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

        return true;
    }

    /// <summary>After a short page (the store's head reached): flips to live and sends CaughtUp under the lock, so no live
    /// frame slips in between the last history frame and CaughtUp; or reads again when newer seqs were announced.</summary>
    private RoundEnd FinishRound(ulong head, bool progressed)
    {
        lock (_lock)
        {
            if (_state != State.CatchingUp)
            {
                return RoundEnd.Done;
            }

            progressed |= head > _last;
            _last = Math.Max(_last, head);
            if (_pendingMax > _last)
            {
                // Committed while we read: read again. If this read brought nothing new, the store does not have yet
                // what the bus announced (a distributed history store lags the log by milliseconds): pause briefly
                // instead of spinning on it.
                return progressed ? RoundEnd.ReadAgain : RoundEnd.RetryLater;
            }

            _state = State.Live;
            if (!_caughtUpSent)
            {
                // The server's position, not the client's: below the cursor only when the client has seen seqs
                // this store never had (e.g. restored from an older backup), which PROTOCOL.md §8 tells it to check.
                _caughtUpSent = true;
                var frame = OutboundFrame.Rent(96);
                ServerFrameWriter.WriteCaughtUp(frame, ChatId, Math.Max(head, _sentMax));
                EnqueueOwned(frame);
                GatewayMetrics.CatchUpDone(_subscribedAt, _catchUpMessages);
            }

            return RoundEnd.Done;
        }
    }

    /// <summary>Seals and enqueues a frame built here, releasing this reference whatever happens.</summary>
    private void EnqueueOwned(OutboundFrame frame)
    {
        try
        {
            Subscriber.TryEnqueueLive(frame.Seal());
        }
        finally
        {
            frame.Release();
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

        _catchUps.Start(this);
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
