using Gateway.Protocol;

namespace Gateway.Server.Fanout;

/// <summary>
/// One subscriber's catch-up runs: its subscriptions replay history one chat at a time, on the thread pool, retrying a
/// briefly unreachable store. The scheduling half of the catch-up state machine; <see cref="ChatSubscription.CatchUpAsync"/>
/// is the replay of one chat.
/// </summary>
/// <remarks>Created with a connection's first subscription, so a connection that only sends pays nothing for it. Holds
/// nothing once the runs are over (a chain of continuations would keep its last tasks).</remarks>
internal sealed class CatchUpQueue(ISubscriber subscriber, CatchUpSettings settings)
{
    /// <summary>Attempts per catch-up run: 5 with 0.2 s, 0.4 s, … pauses ride out about 3 s of store outage (a
    /// distributed writer failing over, a broker restarting); beyond that the client is told to resume from its cursors.</summary>
    private const int Attempts = 5;

    // Guards _waiting and _running. The queue's own lock, not the subscriber's: nothing else takes it.
    private readonly Lock _lock = new();
    private Queue<ChatSubscription>? _waiting;
    private bool _running;

    /// <summary>The connection the runs deliver to.</summary>
    public ISubscriber Subscriber { get; } = subscriber;

    /// <summary>Queues a catch-up run of <paramref name="subscription"/>, or starts it when none runs.</summary>
    public void Start(ChatSubscription subscription)
    {
        lock (_lock)
        {
            if (_running)
            {
                (_waiting ??= new Queue<ChatSubscription>()).Enqueue(subscription);
                return;
            }

            _running = true;
        }

        _ = RunAllAsync(subscription);
    }

    /// <summary>Runs <paramref name="first"/>'s catch-up, then every one queued meanwhile.</summary>
    private async Task RunAllAsync(ChatSubscription first)
    {
        // Off the caller's stack (the receive loop or the bus dispatch loop): catch-up reads the store and may wait for
        // room in the queue.
        await Task.Yield();
        var next = first;
        while (true)
        {
            await RunWithRetriesAsync(next).ConfigureAwait(false);
            lock (_lock)
            {
                if (_waiting is null || !_waiting.TryDequeue(out next!))
                {
                    _waiting = null;
                    _running = false;
                    return;
                }
            }
        }
    }

    private async Task RunWithRetriesAsync(ChatSubscription subscription)
    {
        var closing = Subscriber.Closing;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await subscription.CatchUpAsync(settings, closing).ConfigureAwait(false);
                return;
            }
            catch (OperationCanceledException)
            {
                return; // connection closing
            }
            catch (Exception e) when (attempt < Attempts && !closing.IsCancellationRequested)
            {
                settings.Logger.LogWarning(e, "Catch-up of {Chat} failed for session {Session}; retrying", subscription.ChatId, Subscriber.SessionId);
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), closing).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
            catch (Exception e)
            {
                settings.Logger.LogError(e, "Catch-up of {Chat} failed for session {Session}", subscription.ChatId, Subscriber.SessionId);
                Subscriber.Close(CloseCodes.InternalError, "catch-up failed; resume from your cursors");
                return;
            }
        }
    }
}
