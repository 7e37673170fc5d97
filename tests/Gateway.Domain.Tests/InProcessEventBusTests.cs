using Gateway.Domain.InProcess;

namespace Gateway.Domain.Tests;

public sealed class InProcessEventBusTests
{
    [Fact]
    public async Task Every_handler_sees_every_event_in_publish_order()
    {
        await using var bus = new InProcessEventBus();
        var first = new List<string>();
        var second = new List<string>();
        using var a = bus.Subscribe(e => first.Add(e.EventId));
        using var b = bus.Subscribe(e => second.Add(e.EventId));

        var ids = Enumerable.Range(0, 500).Select(i => $"e{i}").ToList();
        foreach (var id in ids)
        {
            await bus.PublishAsync(Envelope(id)).Within();
        }

        await bus.FlushAsync().Within();
        Assert.Equal(ids, first);
        Assert.Equal(ids, second);
    }

    [Fact]
    public async Task A_throwing_handler_is_reported_and_does_not_stop_the_loop()
    {
        var errors = new List<string>();
        await using var bus = new InProcessEventBus((e, ex) => errors.Add($"{e.EventId}:{ex.Message}"));
        var seen = new List<string>();
        using var bad = bus.Subscribe(e =>
        {
            if (e.EventId == "e1")
            {
                throw new InvalidOperationException("boom");
            }
        });
        using var good = bus.Subscribe(e => seen.Add(e.EventId));

        await bus.PublishAsync(Envelope("e0")).Within();
        await bus.PublishAsync(Envelope("e1")).Within();
        await bus.PublishAsync(Envelope("e2")).Within();
        await bus.FlushAsync().Within();

        Assert.Equal(["e0", "e1", "e2"], seen);
        Assert.Equal(["e1:boom"], errors);
        Assert.Equal(1, bus.HandlerFailures);
    }

    [Fact]
    public async Task A_blocked_handler_does_not_block_publishers()
    {
        await using var bus = new InProcessEventBus();
        using var gate = new ManualResetEventSlim(false);
        var seen = 0;
        using var slow = bus.Subscribe(_ =>
        {
            // Blocks the dispatch loop until released (bounded, so a failing test cannot hang the run).
            gate.Wait(Wait.Timeout);
            Interlocked.Increment(ref seen);
        });

        for (var i = 0; i < 100; i++)
        {
            // Completes synchronously although the handler is stuck on the first event.
            Assert.True(bus.PublishAsync(Envelope($"e{i}")).IsCompletedSuccessfully);
        }

        var flush = bus.FlushAsync();
        Assert.False(flush.IsCompleted);
        gate.Set();
        await flush.Within();
        Assert.Equal(100, Volatile.Read(ref seen));
    }

    [Fact]
    public async Task Disposed_subscription_gets_nothing_more()
    {
        await using var bus = new InProcessEventBus();
        var seen = new List<string>();
        var subscription = bus.Subscribe(e => seen.Add(e.EventId));
        await bus.PublishAsync(Envelope("e0")).Within();
        await bus.FlushAsync().Within();

        subscription.Dispose();
        await bus.PublishAsync(Envelope("e1")).Within();
        await bus.FlushAsync().Within();

        Assert.Equal(["e0"], seen);
    }

    [Fact]
    public async Task Dispose_dispatches_what_was_published_then_refuses_more()
    {
        var bus = new InProcessEventBus();
        var seen = new List<string>();
        using var s = bus.Subscribe(e => seen.Add(e.EventId));
        await bus.PublishAsync(Envelope("e0")).Within();
        await bus.PublishAsync(Envelope("e1")).Within();

        await bus.DisposeAsync().AsTask().Within();

        Assert.Equal(["e0", "e1"], seen);
        Assert.Throws<ObjectDisposedException>(() => bus.PublishAsync(Envelope("e2")));
    }

    [Fact]
    public async Task Batch_end_follows_each_run_of_queued_events_at_most_MaxBatch_long()
    {
        await using var bus = new InProcessEventBus();
        using var gate = new ManualResetEventSlim(false);
        var log = new List<string>();
        using var s = bus.Subscribe(
            e =>
            {
                if (e.EventId == "e0")
                {
                    gate.Wait(Wait.Timeout); // holds the loop while the rest queue up behind e0
                }

                log.Add(e.EventId);
            },
            () => log.Add("end"));

        var total = InProcessEventBus.MaxBatch + 36;
        for (var i = 0; i < total; i++)
        {
            await bus.PublishAsync(Envelope($"e{i}")).Within();
        }

        gate.Set();
        await bus.FlushAsync().Within();

        // e0 and what queued behind it form one batch, cut at MaxBatch; the rest end where the queue ran dry.
        var ends = log.Select((x, i) => (x, i)).Where(p => p.x == "end").Select(p => p.i).ToList();
        Assert.Equal([InProcessEventBus.MaxBatch, total + 1], ends);
        Assert.Equal(Enumerable.Range(0, total).Select(i => $"e{i}"), log.Where(x => x != "end"));
    }

    [Fact]
    public async Task One_event_at_a_time_ends_a_batch_each_and_a_throwing_handler_still_ends_it()
    {
        var errors = 0;
        await using var bus = new InProcessEventBus((_, _) => Interlocked.Increment(ref errors));
        var log = new List<string>();
        using var s = bus.Subscribe(
            e =>
            {
                log.Add(e.EventId);
                if (e.EventId == "e1")
                {
                    throw new InvalidOperationException("boom");
                }
            },
            () => log.Add("end"));

        for (var i = 0; i < 3; i++)
        {
            await bus.PublishAsync(Envelope($"e{i}")).Within();
            await bus.FlushAsync().Within(); // the loop drains between publishes: one event per batch
        }

        Assert.Equal(["e0", "end", "e1", "end", "e2", "end"], log);
        Assert.Equal(1, errors);
    }

    [Fact]
    public void The_default_batch_subscription_ends_a_batch_after_every_event_even_when_the_handler_throws()
    {
        IEventBus bus = new CallingBus();
        var log = new List<string>();
        using var s = bus.Subscribe(
            e =>
            {
                log.Add(e.EventId);
                if (e.EventId == "e1")
                {
                    throw new InvalidOperationException("boom");
                }
            },
            () => log.Add("end"));
        var handler = ((CallingBus)bus).Handler!;

        handler(Envelope("e0"));
        Assert.Throws<InvalidOperationException>(() => handler(Envelope("e1")));
        handler(Envelope("e2"));

        Assert.Equal(["e0", "end", "e1", "end", "e2", "end"], log);
    }

    /// <summary>The least a bus implements: the interface's default batch subscription is what is under test.</summary>
    private sealed class CallingBus : IEventBus, IDisposable
    {
        public Action<EventEnvelope>? Handler { get; private set; }

        public ValueTask PublishAsync(EventEnvelope envelope, CancellationToken cancellationToken = default) => default;

        public IDisposable Subscribe(Action<EventEnvelope> handler)
        {
            Handler = handler;
            return this;
        }

        public void Dispose() => Handler = null;
    }

    private static EventEnvelope Envelope(string id) =>
        new(id, EventTypes.MemberAdded, 0, EventTypes.SchemaVersion, null, "t", "c", new MemberAdded("u"));
}
