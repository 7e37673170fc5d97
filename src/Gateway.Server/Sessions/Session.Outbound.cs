using Gateway.Protocol;
using Gateway.Server.Fanout;
using Gateway.WebSockets;

namespace Gateway.Server.Sessions;

/// <summary>The outbound queue: the session's own frames, and what fanout enqueues through <see cref="ISubscriber"/>.</summary>
internal sealed partial class Session : ISubscriber
{
    /// <inheritdoc/>
    CancellationToken ISubscriber.Closing => Connection.Closing;

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
    public bool TryEnqueueLive(OutboundFrame frame)
    {
        if (Connection.TryEnqueue(frame))
        {
            return true;
        }

        CloseAsSlowConsumer();
        return false;
    }

    /// <inheritdoc/>
    public bool TryEnqueueLiveDeferred(OutboundFrame frame, out bool wakeNeeded)
    {
        if (Connection.TryEnqueueDeferred(frame, out wakeNeeded))
        {
            return true;
        }

        CloseAsSlowConsumer();
        return false;
    }

    /// <inheritdoc/>
    public void Wake() => Connection.Wake();

    /// <summary>Offers an ephemeral frame; dropped (and counted) when the queue is half full or closing.</summary>
    public void TryEnqueueEphemeral(OutboundFrame frame)
    {
        if (!HasRoomForCatchUpOrEphemeral() || !Connection.TryEnqueue(frame))
        {
            _services.Metrics.EphemeralDropped.Add(1);
        }
    }

    /// <summary>Waits until the outbound queue is at most half full, so catch-up leaves room for live traffic.</summary>
    public ValueTask WaitForRoomAsync(CancellationToken cancellationToken)
    {
        return HasRoomForCatchUpOrEphemeral() ? default : WaitSlowAsync(cancellationToken);

        async ValueTask WaitSlowAsync(CancellationToken ct)
        {
            // Only a session replaying more history than half its queue gets here: the writer pump signals when it has
            // drained the queue.
            var o = _services.Options;
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, Connection.Closing);
            await Connection.WaitForQueueAtMostAsync(o.MaxOutboundFrames / 2, o.MaxOutboundBytes / 2, linked.Token).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    void ISubscriber.Forget(ChatSubscription subscription)
    {
        lock (_sync)
        {
            _subs.RemoveExact(subscription);
        }
    }

    /// <inheritdoc/>
    void ISubscriber.Close(ushort closeCode, string reason) => Connection.Close(closeCode, reason);

    /// <summary>At most half the queue's bounds in use: what catch-up and ephemeral frames may fill, so live traffic
    /// always has the other half.</summary>
    private bool HasRoomForCatchUpOrEphemeral()
    {
        var o = _services.Options;
        return Connection.FramesQueued * 2 <= o.MaxOutboundFrames && Connection.BytesQueued * 2 <= o.MaxOutboundBytes;
    }

    private void CloseAsSlowConsumer()
    {
        if (Connection.Closing.IsCancellationRequested)
        {
            return;
        }

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
}
