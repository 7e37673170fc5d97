using System.Diagnostics;
using Gateway.Tools.Common;

namespace Gateway.ScaleOutBench;

/// <summary>The three tests run against one deployment. Every wait is bounded; a run that loses messages or dies is
/// reported, not hidden.</summary>
internal static class Measure
{
    /// <summary>"SOB1" in the publisher-id field of the timed payload: tells the bench's content apart from anything
    /// else in a chat.</summary>
    private const int Magic = 0x31424F53;

    /// <summary>How long stragglers may take after the last send before they count as lost.</summary>
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Open loop at <see cref="BenchOptions.LatencyRate"/>: a sender on gateway A sends message i at start + i/rate
    /// whatever happened to earlier ones, with that intended time in the content; a receiver on gateway B records
    /// receive time − intended time. A stall therefore shows up in every message it delays (no coordinated omission).
    /// </summary>
    public static async Task<LatencyResult> LatencyAsync(Deployment d, BenchOptions o, int run, CancellationToken ct)
    {
        var chat = $"lat-{run}";
        const string senderId = "lat-sender";
        const string receiverId = "lat-receiver";
        await d.CreateChatAsync(chat, [senderId, receiverId], ct).ConfigureAwait(false);

        var warmupCount = (long)(o.WarmupSeconds * o.LatencyRate);
        var total = warmupCount + (long)(o.LatencySeconds * o.LatencyRate);
        var intended = new long[total];
        var delivery = Histograms.NewConcurrent();
        var fromSend = Histograms.NewConcurrent();
        var ack = Histograms.NewConcurrent();
        var lag = Histograms.NewConcurrent();
        long received = 0, acked = 0, anomalies = 0, errors = 0;
        ulong lastSeq = 0;

        await using var receiver = NewConnection();
        await using var sender = NewConnection();
        receiver.OnMessage = (_, seq, content) =>
        {
            var now = Stopwatch.GetTimestamp();

            // The chat is new and only this sender writes to it: seq must run 1, 2, 3, … (a gap, duplicate or reorder
            // is an anomaly; the test does not try to repair it).
            if (!Payload.TryRead(content, out var magic, out var counter, out var due, out var sent) || magic != Magic || seq != lastSeq + 1)
            {
                Interlocked.Increment(ref anomalies);
            }

            lastSeq = seq;
            if (counter >= warmupCount)
            {
                Histograms.Record(delivery, due, now);
                Histograms.Record(fromSend, sent, now);
            }

            Interlocked.Increment(ref received);
        };
        sender.OnAck = (id, _) =>
        {
            // The sender sends nothing but these Sends, so request id k carries counter k − 1.
            var counter = id - 1L;
            if (counter >= warmupCount && counter < total)
            {
                Histograms.Record(ack, Volatile.Read(ref intended[counter]), Stopwatch.GetTimestamp());
            }

            Interlocked.Increment(ref acked);
        };
        sender.OnRequestError = (_, _) => Interlocked.Increment(ref errors);

        await receiver.ConnectAsync(d.GatewayB, d.TokenFor(receiverId), ct).ConfigureAwait(false);
        await receiver.SubscribeAsync(chat, ct).ConfigureAwait(false);
        await sender.ConnectAsync(d.GatewayA, d.TokenFor(senderId), ct).ConfigureAwait(false);

        var content = new byte[o.Size];
        var interval = Stopwatch.Frequency / o.LatencyRate;
        var start = Stopwatch.GetTimestamp() + Histograms.Ticks(0.05);
        for (var i = 0L; i < total; i++)
        {
            var due = start + (long)(i * interval);
            var wait = due - Stopwatch.GetTimestamp();
            if (wait > 0)
            {
                // Timers tick in whole milliseconds and fire late under load: sleep the whole milliseconds less one,
                // then yield the CPU until the intended time (never leave early). At 200/s that is < 2 ms of yielding
                // per 5 ms interval, and sched_yield hands the core to anything runnable.
                var wholeMs = (long)(wait * 1000 / Stopwatch.Frequency) - 1;
                if (wholeMs > 0)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(wholeMs), ct).ConfigureAwait(false);
                }

                while (Stopwatch.GetTimestamp() < due)
                {
                    Thread.Yield();
                }
            }

            Volatile.Write(ref intended[i], due);
            var now = Stopwatch.GetTimestamp();
            Payload.Write(content, Magic, i, due, now);
            if (i >= warmupCount)
            {
                Histograms.Record(lag, due, now);
            }

            await sender.SendAsync(chat, content, ct).ConfigureAwait(false);
        }

        await WaitUntilAsync(() => Interlocked.Read(ref received) >= total && Interlocked.Read(ref acked) + Interlocked.Read(ref errors) >= total, ct)
            .ConfigureAwait(false);
        d.EnsureAlive();
        return new LatencyResult(Percentiles.Of(delivery), Percentiles.Of(fromSend), Percentiles.Of(ack), Percentiles.Of(lag), total, Interlocked.Read(ref received),
            Interlocked.Read(ref anomalies), Interlocked.Read(ref errors));
    }

    /// <summary>
    /// Closed loop: <paramref name="chats"/> chats × <paramref name="sendersPerChat"/> senders, each keeping
    /// <paramref name="inFlight"/> sends unacknowledged, alternately on gateway A and B. Counts acks whose arrival falls
    /// in the measured window (after the warm-up), per second and in total; errors (any Error frame) free the slot too.
    /// </summary>
    public static async Task<ThroughputResult> ThroughputAsync(Deployment d, BenchOptions o, string label, int chats, int sendersPerChat, int inFlight,
        CancellationToken ct)
    {
        var chatIds = Enumerable.Range(0, chats).Select(c => $"{label}-{c}").ToArray();
        var users = chatIds.Select((_, c) => Enumerable.Range(0, sendersPerChat).Select(s => $"{label}-u{c}-{s}").ToArray()).ToArray();
        await ForEachAsync(Enumerable.Range(0, chats), c => d.CreateChatAsync(chatIds[c], users[c], ct)).ConfigureAwait(false);

        var senders = new List<(GatewayConnection Connection, string Chat, SemaphoreSlim Window)>();
        try
        {
            var k = 0;
            for (var c = 0; c < chats; c++)
            {
                foreach (var user in users[c])
                {
                    var endpoint = k++ % 2 == 0 ? d.GatewayA : d.GatewayB;
                    senders.Add((NewConnection(), chatIds[c], new SemaphoreSlim(inFlight, inFlight)));
                    await senders[^1].Connection.ConnectAsync(endpoint, d.TokenFor(user), ct).ConfigureAwait(false);
                }
            }

            var seconds = (int)Math.Ceiling(o.Seconds);
            var perSecond = new long[seconds];
            var ack = Histograms.NewConcurrent();
            long measured = 0, errors = 0;
            var start = Stopwatch.GetTimestamp() + Histograms.Ticks(o.WarmupSeconds);
            var end = start + Histograms.Ticks(o.Seconds);
            foreach (var (connection, _, window) in senders)
            {
                connection.OnAck = (_, issued) =>
                {
                    var now = Stopwatch.GetTimestamp();
                    if (now >= start && now < end)
                    {
                        Interlocked.Increment(ref measured);
                        Interlocked.Increment(ref perSecond[Math.Min(seconds - 1, (now - start) / Stopwatch.Frequency)]);
                        Histograms.Record(ack, issued, now);
                    }

                    window.Release();
                };
                connection.OnRequestError = (_, _) =>
                {
                    Interlocked.Increment(ref errors);
                    window.Release();
                };
            }

            await Task.WhenAll(senders.Select(s => SendLoopAsync(s.Connection, s.Chat, s.Window, o.Size, end, ct))).ConfigureAwait(false);

            // Let what is in flight come back, so the next test starts on an idle system.
            await WaitUntilAsync(() => senders.All(s => s.Window.CurrentCount == inFlight), ct).ConfigureAwait(false);
            d.EnsureAlive();
            var failed = senders.FirstOrDefault(s => s.Connection.Failure is not null).Connection?.Failure;
            if (failed is not null)
            {
                throw new InvalidOperationException($"{d.Name} {label}: a sender's connection failed: {failed}");
            }

            // A partial last second (o.Seconds not whole) is not a fair "slowest second".
            var whole = Math.Max(1, (int)Math.Floor(o.Seconds));
            return new ThroughputResult(Interlocked.Read(ref measured) / o.Seconds, perSecond.Take(whole).Min(), Percentiles.Of(ack), Interlocked.Read(ref errors));
        }
        finally
        {
            await Task.WhenAll(senders.Select(s => s.Connection.DisposeAsync().AsTask())).ConfigureAwait(false);
            foreach (var s in senders)
            {
                s.Window.Dispose();
            }
        }
    }

    private static async Task SendLoopAsync(GatewayConnection connection, string chat, SemaphoreSlim window, int size, long end, CancellationToken ct)
    {
        var content = new byte[size];
        for (var i = 0L; ; i++)
        {
            // Bounded wait: a lost ack must not hang the run past its end.
            if (!await window.WaitAsync(TimeSpan.FromSeconds(30), ct).ConfigureAwait(false))
            {
                throw new TimeoutException($"no ack for 30 s on {chat}: {connection.Failure}");
            }

            var now = Stopwatch.GetTimestamp();
            if (now >= end)
            {
                window.Release();
                return;
            }

            Payload.Write(content, Magic, i, now, now);
            await connection.SendAsync(chat, content, ct).ConfigureAwait(false);
        }
    }

    /// <summary>A bench connection: a 16 KiB receive buffer (larger messages are assembled) and a 10 s TCP connect timeout.</summary>
    private static GatewayConnection NewConnection() => new(16 * 1024, TimeSpan.FromSeconds(10));

    private static async Task ForEachAsync(IEnumerable<int> items, Func<int, Task> body)
    {
        // 8 admin calls at a time: enough to hide the round trips, few enough not to queue behind each other.
        using var gate = new SemaphoreSlim(8);
        await Task.WhenAll(items.Select(async i =>
        {
            await gate.WaitAsync().ConfigureAwait(false);
            try
            {
                await body(i).ConfigureAwait(false);
            }
            finally
            {
                gate.Release();
            }
        })).ConfigureAwait(false);
    }

    private static async Task WaitUntilAsync(Func<bool> condition, CancellationToken ct)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition() && deadline.Elapsed < DrainTimeout)
        {
            await Task.Delay(10, ct).ConfigureAwait(false);
        }
    }
}
