using System.Globalization;
using System.Text;

namespace Gateway.ScaleOutBench;

/// <summary>Writes the results file: medians and spread per setup, the distributed/embedded ratio, the probe, and
/// every run's raw numbers.</summary>
internal static class Report
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>One row of the summary: a name, a unit, and how to read it off a run.</summary>
    private sealed record Metric(string Name, string Unit, Func<RunResult, double> Read, bool HigherIsBetter);

    private static readonly Metric[] Metrics =
    [
        new("Delivery latency p50 (A → B)", "ms", r => r.Latency.Delivery.P50, false),
        new("Delivery latency p99 (A → B)", "ms", r => r.Latency.Delivery.P99, false),
        new("Delivery latency p99.9 (A → B)", "ms", r => r.Latency.Delivery.P999, false),
        new("Delivery latency max (A → B)", "ms", r => r.Latency.Delivery.Max, false),
        new("Delivery from actual send p50", "ms", r => r.Latency.DeliveryFromSend.P50, false),
        new("Delivery from actual send p99", "ms", r => r.Latency.DeliveryFromSend.P99, false),
        new("Ack latency p50 (same test)", "ms", r => r.Latency.Ack.P50, false),
        new("Ack latency p99 (same test)", "ms", r => r.Latency.Ack.P99, false),
        new("One chat: sustained sends", "acks/s", r => r.OneChat.AcksPerSecond, true),
        new("One chat: slowest second", "acks/s", r => r.OneChat.SlowestSecond, true),
        new("One chat: ack p50 under load", "ms", r => r.OneChat.Ack.P50, false),
        new("One chat: ack p99 under load", "ms", r => r.OneChat.Ack.P99, false),
        new("Many chats: sustained sends", "acks/s", r => r.ManyChats.AcksPerSecond, true),
        new("Many chats: slowest second", "acks/s", r => r.ManyChats.SlowestSecond, true),
        new("Many chats: ack p50 under load", "ms", r => r.ManyChats.Ack.P50, false),
        new("Many chats: ack p99 under load", "ms", r => r.ManyChats.Ack.P99, false),
    ];

    public static string Write(BenchOptions o, IReadOnlyList<RunResult> runs, IReadOnlyList<string> failures, RunEnvironment env)
    {
        var s = new StringBuilder();
        s.AppendLine(Inv, $"# Distributed (NATS JetStream) vs embedded: {env.Started:yyyy-MM-dd HH:mm}");
        s.AppendLine();
        s.AppendLine("Produced by `tools/Gateway.ScaleOutBench` (see bench/README.md, \"Distributed mode: measured\").");
        s.AppendLine();
        s.AppendLine("## Setup");
        s.AppendLine();
        s.AppendLine(Inv, $"- Command: `dotnet run -c Release --project tools/Gateway.ScaleOutBench{(o.CommandLine.Length > 0 ? " -- " + o.CommandLine : "")}`");
        s.AppendLine(Inv, $"- Distributed: nats-server ({env.NatsVersion}, JetStream, file store, 1 replica) + 1 writer + 2 gateways, each its own process; embedded: one `--role all` server. Every setup starts fresh (new temp directories) for every run.");
        s.AppendLine(Inv, $"- Order: {string.Join(' ', env.Order)} (interleaved, {o.Runs} run(s) per setup).");
        s.AppendLine(Inv, $"- Machine: {env.CpuModel}, {Environment.ProcessorCount} CPUs, {env.Os}; .NET {Environment.Version}. Server pinning: {(o.ServerCpus is null ? "none (servers, nats-server and the bench client share all CPUs)" : "taskset -c " + o.ServerCpus)}.");
        s.AppendLine(Inv, $"- Load average (1/5/15 min) before: {env.LoadBefore}; after: {env.LoadAfter}. The machine is shared with other sessions building and testing: absolute numbers are noisy, the ratios within one run are the useful part.");
        s.AppendLine(Inv, $"- Latency test: one sender on gateway A, one receiver on gateway B (embedded: both on the one server), one chat, open loop at {o.LatencyRate.ToString(Inv)} msg/s for {o.LatencySeconds.ToString(Inv)} s after {o.WarmupSeconds.ToString(Inv)} s of warm-up; latency = receive time − intended send time (Stopwatch, in the content); {o.Size} B content.");
        s.AppendLine(Inv, $"- One chat: {o.OneChatSenders} senders × {o.OneChatInFlight} in flight, closed loop, alternating gateways A/B; many chats: {o.Chats} chats, one sender each × {o.ManyInFlight} in flight. Rate = acks arriving in {o.Seconds.ToString(Inv)} s after {o.WarmupSeconds.ToString(Inv)} s warm-up. No subscribers in the throughput tests: this is the write path's capacity.");
        s.AppendLine();

        s.AppendLine("## Summary (medians over runs; min–max in brackets)");
        s.AppendLine();
        s.AppendLine("| Metric | Embedded | Distributed | Distributed / embedded |");
        s.AppendLine("|---|---:|---:|---:|");
        var embedded = runs.Where(r => r.Setup == "embedded").ToArray();
        var distributed = runs.Where(r => r.Setup == "distributed").ToArray();
        foreach (var m in Metrics)
        {
            var e = embedded.Select(m.Read).ToArray();
            var d = distributed.Select(m.Read).ToArray();
            var ratio = e.Length > 0 && d.Length > 0 && Median(e) > 0 ? (Median(d) / Median(e)).ToString("0.00", Inv) + "x" : "–";
            s.AppendLine(Inv, $"| {m.Name} ({m.Unit}) | {Cell(e, m.Unit)} | {Cell(d, m.Unit)} | {ratio} |");
        }

        s.AppendLine();
        s.AppendLine("Ratios: for latencies > 1 means the distributed mode is slower; for rates < 1 means it sustains less.");
        s.AppendLine();
        s.AppendLine("Integrity (all runs): " + string.Join("; ", runs.GroupBy(r => r.Setup).Select(g =>
            $"{g.Key}: {g.Sum(r => r.Latency.Sent - r.Latency.Received)} lost, {g.Sum(r => r.Latency.Anomalies)} out-of-order/unknown, " +
            $"{g.Sum(r => r.Latency.Errors + r.OneChat.Errors + r.ManyChats.Errors)} error frames")) + ".");
        if (failures.Count > 0)
        {
            s.AppendLine();
            s.AppendLine("Failed runs (not in the medians):");
            foreach (var f in failures)
            {
                s.AppendLine("- " + f);
            }
        }

        var probes = distributed.Where(r => r.Probe is not null).Select(r => r.Probe!).ToArray();
        if (probes.Length > 0)
        {
            s.AppendLine();
            s.AppendLine("## Distributed path, part by part (probe from the bench process, same nats-server, same rate)");
            s.AppendLine();
            s.AppendLine("| Part | p50 (ms) | p99 (ms) |");
            s.AppendLine("|---|---:|---:|");
            s.AppendLine(Inv, $"| Core NATS request/reply, two connections (gateway → writer hop, no work) | {Cell(probes.Select(p => p.CoreRequest.P50).ToArray(), "ms")} | {Cell(probes.Select(p => p.CoreRequest.P99).ToArray(), "ms")} |");
            s.AppendLine(Inv, $"| JetStream append with CAS + Msg-Id, file store (writer → JetStream) | {Cell(probes.Select(p => p.JetStreamAppend.P50).ToArray(), "ms")} | {Cell(probes.Select(p => p.JetStreamAppend.P99).ToArray(), "ms")} |");
            s.AppendLine(Inv, $"| Append issued → republished copy received (JetStream → gateway) | {Cell(probes.Select(p => p.AppendToRepublish.P50).ToArray(), "ms")} | {Cell(probes.Select(p => p.AppendToRepublish.P99).ToArray(), "ms")} |");
        }

        s.AppendLine();
        s.AppendLine("## Every run (in execution order)");
        s.AppendLine();
        s.AppendLine("| Setup | Run | Delivery p50 / p99 / p99.9 / max (ms) | Ack p50 / p99 (ms) | Bench send lag p50 / p99 (ms) | Sent / received | One chat acks/s (slowest s) | Many chats acks/s (slowest s) | Errors |");
        s.AppendLine("|---|---:|---|---|---|---|---|---|---:|");
        foreach (var r in runs)
        {
            var l = r.Latency;
            s.AppendLine(Inv, $"| {r.Setup} | {r.Run} | {F(l.Delivery.P50)} / {F(l.Delivery.P99)} / {F(l.Delivery.P999)} / {F(l.Delivery.Max)} | {F(l.Ack.P50)} / {F(l.Ack.P99)} | {F(l.Lag.P50)} / {F(l.Lag.P99)} | {l.Sent} / {l.Received} | {r.OneChat.AcksPerSecond:0} ({r.OneChat.SlowestSecond:0}) | {r.ManyChats.AcksPerSecond:0} ({r.ManyChats.SlowestSecond:0}) | {l.Errors + r.OneChat.Errors + r.ManyChats.Errors} |");
        }

        s.AppendLine();
        s.AppendLine("\"Bench send lag\" is how late the bench's own timer sent each message (intended → handed to the socket); it is part of every latency measured from the intended time, in both setups alike. \"From actual send\" leaves it out (and with it the coordinated-omission guard, so it is the optimistic view).");
        return s.ToString();
    }

    private static string Cell(double[] values, string unit)
    {
        if (values.Length == 0)
        {
            return "–";
        }

        var format = unit == "ms" ? "0.00" : "0";
        return values.Length == 1
            ? values[0].ToString(format, Inv)
            : $"{Median(values).ToString(format, Inv)} [{values.Min().ToString(format, Inv)}–{values.Max().ToString(format, Inv)}]";
    }

    private static string F(double ms) => ms.ToString("0.00", Inv);

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    /// <summary>What the report says about the machine and the run.</summary>
    internal sealed class RunEnvironment
    {
        public DateTime Started { get; } = DateTime.Now;

        public string LoadBefore { get; } = LoadAverage();

        public string LoadAfter { get; set; } = "";

        public List<string> Order { get; } = [];

        public string NatsVersion { get; set; } = "nats-server";

        public string CpuModel { get; } = ReadCpuModel();

        public string Os { get; } = System.Runtime.InteropServices.RuntimeInformation.OSDescription;

        public static string LoadAverage()
        {
            try
            {
                return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
            }
            catch (IOException)
            {
                return "n/a";
            }
        }

        private static string ReadCpuModel()
        {
            try
            {
                return File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
            }
            catch (IOException)
            {
                return "unknown CPU";
            }
        }
    }
}
