using System.Globalization;
using Gateway.LoadGen.Measurement;
using Gateway.LoadGen.Reporting;
using Gateway.LoadGen.Workers;
using Gateway.Tools.Common;

namespace Gateway.LoadGen.Scenarios;

internal sealed partial class Coordinator
{
    // The admin API takes at most this many members per call comfortably; idle users are grouped into chats of this size.
    private const int IdleGroupSize = 500;

    /// <summary>Memory per idle, authenticated, subscribed connection: server RSS at each step, least-squares slope.</summary>
    private async Task IdleAsync()
    {
        var steps = _cli.Ints("--steps", [1000, 2000, 5000, 10000, 15000]);
        var total = _cli.Int("--connections", steps.Max());
        steps = [.. steps.Where(s => s <= total).Append(total).Distinct().Order()];
        var settle = _cli.Double("--settle-seconds", 3);
        Report.Parameters["connections"] = Str(total);
        Report.Parameters["steps"] = string.Join(",", steps);
        Report.Parameters["settleSeconds"] = Str(settle);

        var clients = Enumerable.Range(0, total).Select(i => new ClientSpec(i + 1, User("idle", i), [Room("idle-g" + (i / IdleGroupSize))], null)).ToList();
        await CreateRoomsAsync(clients.GroupBy(c => c.Rooms[0]).Select(g => (g.Key, g.Select(c => c.User).ToArray()))).ConfigureAwait(false);
        StartWorkers(clients);
        await Delay(settle).ConfigureAwait(false);
        Sample(0);
        long failed = 0, connected = 0;
        foreach (var step in steps)
        {
            var (ok, f) = await ConnectUpToAsync(step, subscribe: true).ConfigureAwait(false);
            failed += f;
            connected += ok;
            await Delay(settle).ConfigureAwait(false);
            Sample((int)connected);
        }

        var points = Report.Memory.Where(m => m.ServerRssBytes > 0).Select(m => ((double)m.Connections, (double)m.ServerRssBytes)).ToList();
        if (points.Count >= 2)
        {
            Report.Metrics["serverBytesPerConnection"] = Math.Round(Slope(points));
        }
        else
        {
            Report.Notes.Add("No server RSS samples: pass --server-pid (or let the tool start the server) to measure memory.");
        }

        var lg = Report.Memory.Select(m => ((double)m.Connections, (double)m.LoadGenRssBytes)).ToList();
        Report.Metrics["loadgenBytesPerConnection"] = Math.Round(Slope(lg));
        Report.Metrics["connected"] = connected;
        Report.Metrics["connectFailures"] = failed;
        Report.Verdict = failed == 0 ? "pass" : "fail";
    }

    private void Sample(int connections)
    {
        var (_, lgRss) = _aggregator.Workers();
        var server = _serverPid is { } pid ? ProcStatus.RssBytes(pid) : 0;
        Report.Memory.Add(new MemoryPoint(connections, server, lgRss));
    }

    /// <summary>Least-squares slope of y over x.</summary>
    internal static double Slope(IReadOnlyList<(double X, double Y)> points)
    {
        if (points.Count < 2)
        {
            return 0;
        }

        var mx = points.Average(p => p.X);
        var my = points.Average(p => p.Y);
        var sxx = points.Sum(p => (p.X - mx) * (p.X - mx));
        return sxx == 0 ? 0 : points.Sum(p => (p.X - mx) * (p.Y - my)) / sxx;
    }

    /// <summary>
    /// One publisher → S subscribers. The publish rate is stepped up (×factor) until p99 exceeds the limit or
    /// deliveries/s stop growing (less than 5 % over the best so far); the best step within the limit is the
    /// maximum sustained deliveries/s.
    /// </summary>
    private async Task BroadcastAsync()
    {
        var subscribers = _cli.Int("--subscribers", 100);
        var rate = _cli.Double("--rate", 100);
        var factor = _cli.Double("--step-factor", 2);
        var stepSeconds = _cli.Double("--step-seconds", 5);
        var maxSteps = _cli.Int("--max-steps", 12);
        var limitMs = _cli.Double("--p99-limit-ms", 50);
        Report.Parameters["subscribers"] = Str(subscribers);
        Report.Parameters["startRate"] = Str(rate);
        Report.Parameters["stepFactor"] = Str(factor);
        Report.Parameters["stepSeconds"] = Str(stepSeconds);
        Report.Parameters["p99LimitMs"] = Str(limitMs);
        Report.Parameters["size"] = Str(_cli.Int("--size", 100));

        var room = Room("bcast");
        var publisher = new ClientSpec(1, User("pub", 0), [], room);
        var clients = new List<ClientSpec> { publisher };
        clients.AddRange(Enumerable.Range(0, subscribers).Select(i => new ClientSpec(i + 2, User("sub", i), [room], null)));
        await _target.CreateRoomAsync(room, [.. clients.Select(c => c.User)], CancellationToken.None).ConfigureAwait(false);
        StartWorkers(clients);
        var (_, failed) = await ConnectUpToAsync(clients.Count, subscribe: true).ConfigureAwait(false);
        Report.Metrics["connectFailures"] = failed;

        // A first step right after connecting would measure cold code on both sides (JIT tiers, thread pools growing,
        // caches): in the first runs every target, nats-server included, missed even a 1 s p99 at the first step.
        // Publish at the start rate for a while first, unmeasured.
        var warmup = _cli.Double("--warmup-seconds", 5);
        Report.Parameters["warmupSeconds"] = Str(warmup);
        if (warmup > 0)
        {
            await SetRateAsync(rate).ConfigureAwait(false);
            await Delay(warmup).ConfigureAwait(false);
        }

        double best = 0;
        for (var step = 0; step < maxSteps; step++)
        {
            await SetRateAsync(rate).ConfigureAwait(false);

            // The first second of a step is warm-up (queues filling to the new rate): measure after it.
            await Delay(1).ConfigureAwait(false);
            var (w, serverCpu, loadGenCpu) = await MeasureWindowAsync(stepSeconds).ConfigureAwait(false);
            var delivered = w.Delivered / stepSeconds;
            var p99 = Histograms.Ms(w.Latency, 99);
            var sustained = p99 <= limitMs && w.Latency.TotalCount > 0;
            Report.Steps.Add(new StepResult(rate, rate * subscribers, w.Sent / stepSeconds, delivered, Histograms.Ms(w.Latency, 50), p99,
                Histograms.Ms(w.Latency, 99.9), w.Errors.Values.Sum(), sustained, serverCpu, loadGenCpu));
            if (!sustained || delivered < best * 1.05)
            {
                if (sustained)
                {
                    best = Math.Max(best, delivered);
                }

                break;
            }

            best = delivered;
            rate *= factor;
        }

        await SetRateAsync(0).ConfigureAwait(false);
        await Delay(1).ConfigureAwait(false);
        Report.Metrics["maxSustainedDeliveriesPerSec"] = Math.Round(best);
        var bestStep = Report.Steps.Where(s => s.Sustained).OrderByDescending(s => s.DeliveredPerSec).FirstOrDefault();
        if (bestStep is not null)
        {
            Report.Metrics["p99MsAtMax"] = bestStep.P99Ms;
            Report.Metrics["publishRateAtMax"] = bestStep.PublishRate;
            AddCpuMetrics(bestStep.ServerCpuPct, bestStep.LoadGenCpuPct, bestStep.ServerCpuUsPerDelivery, "AtMax");
        }

        NoteSaturatedLoadGen(Report.Steps.Select(s => s.LoadGenCpuPct));

        if (best == 0)
        {
            Report.Notes.Add($"Even the first step ({Report.Parameters["startRate"]}/s) was over the p99 limit: start lower (--rate).");
        }

        // The verdict is about correctness (messages flowed, none repeated or out of order); the maximum is the metric.
        Report.Verdict = Report.Steps.Sum(s => s.DeliveredPerSec) > 0 && failed == 0 ? "pass" : "fail";
    }

    /// <summary>Many two-member chats; both members publish to their chat at a fixed total rate.</summary>
    private async Task PairsAsync()
    {
        var pairs = _cli.Int("--pairs", 100);
        var rate = _cli.Double("--rate", 1000);
        var duration = _cli.Double("--duration", 10);
        Report.Parameters["pairs"] = Str(pairs);
        Report.Parameters["rate"] = Str(rate);
        Report.Parameters["durationSeconds"] = Str(duration);
        Report.Parameters["size"] = Str(_cli.Int("--size", 100));

        var clients = new List<ClientSpec>();
        for (var p = 0; p < pairs; p++)
        {
            var room = Room("pair" + p);
            clients.Add(new ClientSpec(2 * p + 1, User("a", p), [room], room));
            clients.Add(new ClientSpec(2 * p + 2, User("b", p), [room], room));
        }

        await CreateRoomsAsync(clients.GroupBy(c => c.PublishRoom!).Select(g => (g.Key, g.Select(c => c.User).ToArray()))).ConfigureAwait(false);
        StartWorkers(clients);
        var (_, failed) = await ConnectUpToAsync(clients.Count, subscribe: true).ConfigureAwait(false);
        await SetRateAsync(rate).ConfigureAwait(false);

        // Unmeasured warm-up at the full rate (as in broadcast; at least the 1 s this scenario always had).
        var warmup = Math.Max(1, _cli.Double("--warmup-seconds", 5));
        Report.Parameters["warmupSeconds"] = Str(warmup);
        await Delay(warmup).ConfigureAwait(false);
        var (w, serverCpu, loadGenCpu) = await MeasureWindowAsync(duration).ConfigureAwait(false);
        await SetRateAsync(0).ConfigureAwait(false);
        await Delay(1).ConfigureAwait(false);
        Report.Latency = Summarize(w.Latency);
        Report.Metrics["offeredSendsPerSec"] = rate;
        Report.Metrics["sendsPerSec"] = Math.Round(w.Sent / duration);
        Report.Metrics["deliveriesPerSec"] = Math.Round(w.Delivered / duration);
        Report.Metrics["p50Ms"] = Histograms.Ms(w.Latency, 50);
        Report.Metrics["p99Ms"] = Histograms.Ms(w.Latency, 99);
        Report.Metrics["p999Ms"] = Histograms.Ms(w.Latency, 99.9);
        Report.Metrics["connectFailures"] = failed;
        AddCpuMetrics(serverCpu, loadGenCpu, ProcStatus.CpuUsPer(serverCpu, w.Delivered / duration), "");
        NoteSaturatedLoadGen([loadGenCpu]);
        Report.Verdict = failed == 0 && w.Delivered > 0 ? "pass" : "fail";
    }

    /// <summary>Handshakes + authentication per second: N connections, as fast as the concurrency allows.</summary>
    private async Task ConnectStormAsync()
    {
        var n = _cli.Int("--connections", 1000);
        Report.Parameters["connections"] = Str(n);
        Report.Parameters["concurrency"] = Str(_cli.Int("--concurrency", 64));
        var clients = Enumerable.Range(0, n).Select(i => new ClientSpec(i + 1, User("c", i), [], null)).ToList();
        StartWorkers(clients);
        var started = _clock.Elapsed;
        var (ok, failed) = await ConnectUpToAsync(n, subscribe: false).ConfigureAwait(false);
        var seconds = (_clock.Elapsed - started).TotalSeconds;
        Report.Metrics["connectsPerSec"] = Math.Round(ok / seconds);
        Report.Metrics["connected"] = ok;
        Report.Metrics["connectFailures"] = failed;
        Report.Metrics["stormSeconds"] = Math.Round(seconds, 3);
        await BroadcastCommandAsync(new WorkerCommand { Op = "disconnect" }).ConfigureAwait(false);
        Report.Verdict = failed == 0 ? "pass" : "fail";
    }

    /// <summary>
    /// Bounded soak: chats of M members, one publisher each, subscribers reconnecting with their cursor all the
    /// time; at the end every client reconnects once more and catches up, and whatever of 1..head never arrived
    /// is lost. Lost, duplicated and reordered must all be 0.
    /// </summary>
    private async Task SoakAsync()
    {
        var chats = _cli.Int("--chats", 10);
        var members = Math.Max(2, _cli.Int("--members", 10));
        var rate = _cli.Double("--rate", 200);
        var duration = _cli.Double("--duration", 30);
        var churn = _cli.Double("--churn", 0.05);
        Report.Parameters["chats"] = Str(chats);
        Report.Parameters["members"] = Str(members);
        Report.Parameters["rate"] = Str(rate);
        Report.Parameters["durationSeconds"] = Str(duration);
        Report.Parameters["churnPerSecond"] = Str(churn);

        var clients = new List<ClientSpec>();
        var id = 1;
        for (var c = 0; c < chats; c++)
        {
            var room = Room("soak" + c);
            for (var m = 0; m < members; m++)
            {
                clients.Add(new ClientSpec(id++, User($"s{c}m", m), [room], m == 0 ? room : null));
            }
        }

        // Interleave chats across workers: each worker gets publishers and subscribers of many chats.
        clients = [.. clients.OrderBy(c => c.Id % Math.Max(1, _cli.Int("--workers", 1))).ThenBy(c => c.Id)];
        await CreateRoomsAsync(clients.GroupBy(c => c.Rooms[0]).Select(g => (g.Key, g.Select(c => c.User).ToArray()))).ConfigureAwait(false);
        StartWorkers(clients);
        var (_, failed) = await ConnectUpToAsync(clients.Count, subscribe: true).ConfigureAwait(false);
        await SetRateAsync(rate).ConfigureAwait(false);
        await BroadcastCommandAsync(new WorkerCommand { Op = "churn", Fraction = churn }).ConfigureAwait(false);
        await Delay(duration).ConfigureAwait(false);
        await BroadcastCommandAsync(new WorkerCommand { Op = "churn", Fraction = 0 }).ConfigureAwait(false);
        await SetRateAsync(0).ConfigureAwait(false);

        // Let in-flight sends be acknowledged and fanned out before the final catch-up reads the heads.
        await Delay(1).ConfigureAwait(false);
        var finals = await Task.WhenAll(_workers.Select(w => w.CommandAsync(new WorkerCommand { Op = "final" }, CommandTimeout))).ConfigureAwait(false);
        Report.Seq = finals.Aggregate(new SeqStats(), (a, f) => a + (f.Seq ?? new SeqStats()));
        var run = _aggregator.Run;
        Report.Metrics["sent"] = run.Sent;
        Report.Metrics["delivered"] = run.Delivered;
        Report.Metrics["reconnects"] = run.Reconnects;
        Report.Metrics["lost"] = Report.Seq.Lost;
        Report.Metrics["duplicated"] = Report.Seq.Duplicates;
        Report.Metrics["reordered"] = Report.Seq.Reordered;
        Report.Metrics["catchUpFailures"] = Report.Seq.CatchUpFailures;
        Report.Metrics["connectFailures"] = failed;
        if (!_target.HasServerSeq)
        {
            Report.Notes.Add("This target has no server seq: loss is counted as holes in each publisher's counter; a lost tail is not detectable.");
        }

        Report.Verdict = Report.Seq is { Lost: 0, Duplicates: 0, Reordered: 0, CatchUpFailures: 0 } && failed == 0 && run.Sent > 0 ? "pass" : "fail";
    }

    private static string Str(double v) => v.ToString(CultureInfo.InvariantCulture);
}
