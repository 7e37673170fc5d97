using Gateway.WebSockets;

namespace Gateway.Server.Fanout;

/// <summary>
/// What fanout needs from a connection that holds subscriptions: the one way a message leaves Fanout. A session
/// implements it; Fanout never names the session, so a message's path reads in one direction (bus → registry →
/// subscription → this port → the connection's queue).
/// </summary>
/// <remarks>Every method may be called from any thread (the bus dispatch loop, a catch-up task) and must not block.</remarks>
internal interface ISubscriber
{
    /// <summary>For logs: which connection this is.</summary>
    string SessionId { get; }

    /// <summary>Whose connection: typing is not echoed to its sender, a member removal revokes by user.</summary>
    string UserId { get; }

    /// <summary>Cancelled once the connection is closing: catch-up stops reading history.</summary>
    CancellationToken Closing { get; }

    /// <summary>Enqueues a sealed frame and wakes the writer (the caller keeps its reference). A full queue closes the
    /// connection as a slow consumer.</summary>
    /// <returns>False when the frame was not enqueued (full or closing).</returns>
    bool TryEnqueueLive(OutboundFrame frame);

    /// <summary>As <see cref="TryEnqueueLive"/>, leaving the writer asleep until the fanout pass ends.</summary>
    /// <param name="frame">A sealed frame.</param>
    /// <param name="wakeNeeded">True when the caller must call <see cref="Wake"/> once the pass ends.</param>
    bool TryEnqueueLiveDeferred(OutboundFrame frame, out bool wakeNeeded);

    /// <summary>Wakes the writer for frames enqueued by <see cref="TryEnqueueLiveDeferred"/>.</summary>
    void Wake();

    /// <summary>Offers a frame that may be dropped (typing) when the queue is half full.</summary>
    void TryEnqueueEphemeral(OutboundFrame frame);

    /// <summary>Completes when the outbound queue has room for catch-up without crowding live traffic out.</summary>
    ValueTask WaitForRoomAsync(CancellationToken cancellationToken);

    /// <summary>The server ended <paramref name="subscription"/> (closed and unregistered already): forget it. The
    /// client is told by the caller.</summary>
    void Forget(ChatSubscription subscription);

    /// <summary>Closes the connection: fanout cannot keep its promise (catch-up gave up); the client resumes from its cursors.</summary>
    void Close(ushort closeCode, string reason);
}
