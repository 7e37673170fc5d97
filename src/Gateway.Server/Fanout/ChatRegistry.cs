using System.Collections.Concurrent;
using Gateway.Domain;
using Gateway.Domain.Ports;
using Gateway.Protocol;
using Gateway.WebSockets;

namespace Gateway.Server.Fanout;

/// <summary>
/// Chat → the subscriptions held on this gateway. It listens to the bus and fans each committed message out:
/// the Message frame is serialized ONCE into a ref-counted pooled <see cref="OutboundFrame"/> and the same bytes
/// are enqueued to every subscriber (server frames are unmasked, so they are identical for everyone).
/// </summary>
/// <remarks>
/// Subscriber lists are copy-on-write arrays: fanout (per message) reads a snapshot without locking; subscribe
/// and unsubscribe (rare by comparison) copy under a lock. Bus handlers run on the bus dispatch loop and never
/// block: enqueueing is a bounded, non-waiting operation.
/// </remarks>
public sealed class ChatRegistry : IDisposable
{
    private readonly ConcurrentDictionary<ChatKey, Subscribers> _chats = new();
    private readonly IDisposable _busSubscription;
    private readonly GatewayMetrics _metrics;
    private readonly IChatInterest? _interest;

    /// <summary>Starts listening to <paramref name="bus"/>.</summary>
    /// <param name="bus">Where committed events come from.</param>
    /// <param name="metrics">Counters.</param>
    /// <param name="interest">For a distributed bus: told which chats have local subscribers (null: the bus carries all).</param>
    public ChatRegistry(IEventBus bus, GatewayMetrics metrics, IChatInterest? interest = null)
    {
        ArgumentNullException.ThrowIfNull(bus);
        _metrics = metrics;
        _interest = interest;
        _busSubscription = bus.Subscribe(OnEvent, EndPass);
    }

    /// <summary>
    /// A fanout pass defers this many deliveries at most before it wakes its connections, whatever the bus's batch:
    /// ≈ 0.4 µs of fanout work each (bench/README.md, "Delivery"), so the first frame of a pass waits ≈ 3 ms at most
    /// for the pass to end. 8,192 is 8 events to 1,000 subscribers, or 1 to 10,000 (a single event is never split).
    /// </summary>
    internal const int MaxDeferredDeliveries = 8192;

    /// <summary>
    /// Registers a subscription for live events and, with a distributed bus, makes sure this gateway receives its chat's
    /// events before returning (so catch-up, which starts after, cannot miss an event committed in between).
    /// </summary>
    /// <exception cref="Exception">The bus could not subscribe (e.g. NATS unreachable); the caller removes the subscription.</exception>
    internal async ValueTask AddAsync(ChatSubscription subscription, CancellationToken cancellationToken)
    {
        Add(subscription);
        if (_interest is null)
        {
            return;
        }

        var handle = await _interest.WatchAsync(subscription.TenantId, subscription.ChatId, cancellationToken).ConfigureAwait(false);
        if (!subscription.AttachInterest(handle))
        {
            handle.Dispose(); // removed while we subscribed
        }
    }

    /// <summary>Sends every live subscription of a chat back through catch-up, to repair events a distributed bus may
    /// have lost (called after a reconnect to NATS).</summary>
    public void Resync(string tenantId, string chatId)
    {
        if (_chats.TryGetValue(new ChatKey(tenantId, chatId), out var subs))
        {
            foreach (var s in subs.Items)
            {
                s.Resync();
            }
        }
    }

    internal void Add(ChatSubscription subscription)
    {
        var key = new ChatKey(subscription.TenantId, subscription.ChatId);
        while (true)
        {
            var subs = _chats.GetOrAdd(key, static _ => new Subscribers());
            lock (subs)
            {
                if (subs.Dead)
                {
                    continue; // lost a race with the removal of the last subscriber: retry with a fresh entry
                }

                var old = subs.Items;
                var next = new ChatSubscription[old.Length + 1];
                old.CopyTo(next, 0);
                next[^1] = subscription;
                subs.Items = next;
                return;
            }
        }
    }

    internal void Remove(ChatSubscription subscription)
    {
        subscription.ReleaseInterest();
        var key = new ChatKey(subscription.TenantId, subscription.ChatId);
        if (!_chats.TryGetValue(key, out var subs))
        {
            return;
        }

        lock (subs)
        {
            var old = subs.Items;
            var i = Array.IndexOf(old, subscription);
            if (i < 0)
            {
                return;
            }

            if (old.Length == 1)
            {
                subs.Items = [];
                subs.Dead = true;
                _chats.TryRemove(new KeyValuePair<ChatKey, Subscribers>(key, subs));
                return;
            }

            var next = new ChatSubscription[old.Length - 1];
            Array.Copy(old, 0, next, 0, i);
            Array.Copy(old, i + 1, next, i, old.Length - i - 1);
            subs.Items = next;
        }
    }

    private void OnEvent(EventEnvelope envelope)
    {
        switch (envelope.Payload)
        {
            case MessageCreated created:
                DeliverDeferred(created.Message, envelope.CommittedAt, envelope.TraceId);
                break;
            case MemberRemoved removed:
                Revoke(envelope.TenantId, envelope.ChatId, removed.UserId);
                break;
        }
    }

    /// <summary>Fans one committed message out to this gateway's subscribers of its chat, and wakes their writers.</summary>
    internal void Deliver(ChatMessage message)
    {
        DeliverDeferred(message, committedAt: 0);
        DeferredWakes.WakeAll();
    }

    /// <summary>Ends a fanout pass (the bus's batch): wakes every writer that got frames in it.</summary>
    internal static void EndPass() => DeferredWakes.WakeAll();

    /// <summary>Fans one committed message out; the writers are woken at the end of the pass (<see cref="EndPass"/>, on
    /// this thread). <paramref name="committedAt"/> (a Stopwatch timestamp, 0: unknown) rides on the frame, so that each
    /// connection's writer records the delivery lag when it hands the frame to its socket.</summary>
    /// <remarks>No default for <paramref name="committedAt"/>: a path that forgets it loses the delivery-lag samples
    /// silently (a separate traced fanout once did). With <paramref name="traceParent"/> and a listener, the pass runs
    /// under a span continuing the event's trace: one per event on a gateway where the chat has subscribers, never one
    /// per connection.</remarks>
    internal void DeliverDeferred(ChatMessage message, long committedAt, string? traceParent = null)
    {
        if (!_chats.TryGetValue(new ChatKey(message.TenantId, message.ChatId), out var subs))
        {
            return;
        }

        var snapshot = subs.Items;
        if (snapshot.Length == 0)
        {
            return;
        }

        using var span = traceParent is not null && GatewayTracing.Enabled
            ? GatewayTracing.Continue(GatewayTracing.Fanout, System.Diagnostics.ActivityKind.Consumer, traceParent)
            : null;
        if (span is not null)
        {
            span.SetTag(GatewayTracing.TenantTag, message.TenantId);
            span.SetTag(GatewayTracing.ChatTag, message.ChatId);
            span.SetTag(GatewayTracing.SeqTag, message.Seq);
            span.SetTag(GatewayTracing.SubscribersTag, snapshot.Length);
        }

        // Serialize once; each successful enqueue takes its own reference, ours is released at the end.
        var frame = MessageFrames.Build(message);
        frame.Timestamp = committedAt;
        try
        {
            var delivered = 0;
            foreach (var s in snapshot)
            {
                if (s.OnLive(message.Seq, frame))
                {
                    delivered++;
                }
            }

            _metrics.Deliveries.Add(delivered);
            DeferredWakes.CountFrames(delivered);
        }
        finally
        {
            frame.Release();
        }

        if (DeferredWakes.Frames >= MaxDeferredDeliveries)
        {
            DeferredWakes.WakeAll();
        }
    }

    /// <summary>
    /// Fans a typing notice out to the chat's live subscribers on this gateway, except the typer's own sessions.
    /// Ephemeral: never stored, dropped for any connection whose queue is half full.
    /// </summary>
    internal void PublishTyping(string tenantId, string chatId, string userId)
    {
        if (TypingRelay is { } relay)
        {
            relay(tenantId, chatId, userId); // every gateway with subscribers of the chat, this one included, delivers it
            return;
        }

        DeliverTyping(tenantId, chatId, userId);
    }

    /// <summary>With a distributed bus: carries typing notices to every gateway (including this one), which call
    /// <see cref="DeliverTyping"/>. Null: typing is fanned out here only.</summary>
    public Action<string, string, string>? TypingRelay { get; set; }

    /// <summary>Fans a typing notice out to this gateway's live subscribers of the chat, except the typer's sessions.</summary>
    public void DeliverTyping(string tenantId, string chatId, string userId)
    {
        if (!_chats.TryGetValue(new ChatKey(tenantId, chatId), out var subs))
        {
            return;
        }

        var snapshot = subs.Items;
        if (snapshot.Length == 0 || (snapshot.Length == 1 && string.Equals(snapshot[0].Subscriber.UserId, userId, StringComparison.Ordinal)))
        {
            return; // nobody but (at most) the typer
        }

        var frame = OutboundFrame.Rent(32 + chatId.Length + userId.Length);
        ServerFrameWriter.WriteUserTyping(frame, chatId, userId);
        frame.Seal();
        try
        {
            foreach (var s in snapshot)
            {
                if (!string.Equals(s.Subscriber.UserId, userId, StringComparison.Ordinal))
                {
                    s.OnEphemeral(frame);
                }
            }
        }
        finally
        {
            frame.Release();
        }
    }

    private void Revoke(string tenantId, string chatId, string userId)
    {
        if (!_chats.TryGetValue(new ChatKey(tenantId, chatId), out var subs))
        {
            return;
        }

        foreach (var s in subs.Items)
        {
            if (string.Equals(s.Subscriber.UserId, userId, StringComparison.Ordinal))
            {
                // Unregistered here, then the subscriber forgets it and the client is told: the call goes one way.
                Remove(s);
                s.Revoke(ErrorCode.NotMember, "removed from the chat");
            }
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _busSubscription.Dispose();

    private sealed class Subscribers
    {
        public ChatSubscription[] Items = [];
        public bool Dead;
    }
}
