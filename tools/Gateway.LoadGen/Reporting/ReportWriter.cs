using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Gateway.LoadGen.Reporting;

/// <summary>Writes a run as <c>&lt;scenario&gt;-&lt;target&gt;[-label].json</c>, <c>.md</c> and SVG plots in one directory.</summary>
public static class ReportWriter
{
    /// <summary>Indented camelCase JSON.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>Writes every file; returns the paths written.</summary>
    public static IReadOnlyList<string> Write(RunReport report, string directory)
    {
        ArgumentNullException.ThrowIfNull(report);
        Directory.CreateDirectory(directory);
        var stem = Path.Combine(directory, $"{report.Scenario}-{report.Target}{(report.Label is { } l ? "-" + l : "")}");
        var files = new List<string>();
        void Put(string path, string text)
        {
            File.WriteAllText(path, text);
            files.Add(path);
        }

        Put(stem + ".json", JsonSerializer.Serialize(report, Json));
        var svgs = new List<string>();
        if (report.Latency is { } lat)
        {
            // x = -log10(1 - p): 90 % → 1, 99 % → 2, 99.9 % → 3, so the tail is readable.
            Put(stem + "-latency.svg", Svg.Chart($"{report.Scenario} {report.Target}: delivery latency by percentile", "percentile", "latency (ms)",
                [new Svg.Series(report.Target, [.. lat.Spectrum.Where(p => p[0] < 100).Select(p => (-Math.Log10(1 - (p[0] / 100)), p[1]))], Markers: true)],
                x => (100 * (1 - Math.Pow(10, -x))).ToString("0.###", CultureInfo.InvariantCulture) + "%"));
            svgs.Add(stem + "-latency.svg");
        }

        if (report.Timeline.Count > 0)
        {
            Put(stem + "-throughput.svg", Svg.Chart($"{report.Scenario} {report.Target}: throughput over time", "time (s)", "per second",
            [
                new Svg.Series("sent/s", [.. report.Timeline.Select(p => (p.T, p.SentPerSec))]),
                new Svg.Series("delivered/s", [.. report.Timeline.Select(p => (p.T, p.DeliveredPerSec))]),
                new Svg.Series("connects/s", [.. report.Timeline.Select(p => (p.T, p.ConnectsPerSec))]),
            ]));
            svgs.Add(stem + "-throughput.svg");
        }

        if (report.Steps.Count > 0)
        {
            Put(stem + "-steps.svg", Svg.Chart($"{report.Scenario} {report.Target}: deliveries vs offered", "offered deliveries/s", "deliveries/s",
            [
                new Svg.Series("delivered", [.. report.Steps.Select(s => (s.OfferedDeliveriesPerSec, s.DeliveredPerSec))], Markers: true),
                new Svg.Series("offered", [.. report.Steps.Select(s => (s.OfferedDeliveriesPerSec, s.OfferedDeliveriesPerSec))]),
            ]));
            svgs.Add(stem + "-steps.svg");
        }

        if (report.Memory.Count > 0)
        {
            Put(stem + "-memory.svg", Svg.Chart($"{report.Scenario} {report.Target}: RSS vs connections", "connections", "RSS (MiB)",
            [
                new Svg.Series("server", [.. report.Memory.Select(m => ((double)m.Connections, m.ServerRssBytes / 1048576.0))], Markers: true),
                new Svg.Series("load generator", [.. report.Memory.Select(m => ((double)m.Connections, m.LoadGenRssBytes / 1048576.0))], Markers: true),
            ]));
            svgs.Add(stem + "-memory.svg");
        }

        Put(stem + ".md", Markdown(report, svgs.Select(Path.GetFileName).ToList()!));
        return files;
    }

    /// <summary>The human summary of one run.</summary>
    private static string Cpu(double pct) => pct < 0 ? "–" : pct.ToString("F0", CultureInfo.InvariantCulture);

    public static string Markdown(RunReport r, IReadOnlyList<string> svgs)
    {
        ArgumentNullException.ThrowIfNull(r);
        ArgumentNullException.ThrowIfNull(svgs);
        var sb = new StringBuilder();
        var ic = CultureInfo.InvariantCulture;
        sb.Append(ic, $"# {r.Scenario} against {r.Target}{(r.Label is { } l ? $" ({l})" : "")}\n\n");
        sb.Append(ic, $"Started {r.StartedAt:u}, {r.DurationSeconds:F1} s. Verdict: **{r.Verdict}**.\n\n");
        sb.Append("| Parameter | Value |\n|---|---|\n");
        foreach (var (k, v) in r.Parameters.Concat(r.Environment))
        {
            sb.Append(ic, $"| {k} | {v} |\n");
        }

        sb.Append("\n| Metric | Value |\n|---|---|\n");
        foreach (var (k, v) in r.Metrics)
        {
            sb.Append(ic, $"| {k} | {v:0.###} |\n");
        }

        if (r.Latency is { } lat)
        {
            sb.Append(ic, $"\nDelivery latency from the intended send time ({lat.Count:N0} messages): p50 {lat.P50:F3} ms, p90 {lat.P90:F3} ms, p99 {lat.P99:F3} ms, p99.9 {lat.P999:F3} ms, max {lat.Max:F3} ms.\n");
        }

        if (r.ConnectLatency is { } cl)
        {
            sb.Append(ic, $"\nConnect + auth latency ({cl.Count:N0} connects): p50 {cl.P50:F3} ms, p99 {cl.P99:F3} ms, max {cl.Max:F3} ms.\n");
        }

        if (r.Steps.Count > 0)
        {
            sb.Append("\n| Publish rate | Offered deliveries/s | Sent/s | Delivered/s | p50 ms | p99 ms | p99.9 ms | Errors | Within limit | Server CPU % | Load gen CPU % | Server CPU µs/delivery |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
            foreach (var s in r.Steps)
            {
                sb.Append(ic, $"| {s.PublishRate:0} | {s.OfferedDeliveriesPerSec:0} | {s.SentPerSec:0} | {s.DeliveredPerSec:0} | {s.P50Ms:F2} | {s.P99Ms:F2} | {s.P999Ms:F2} | {s.Errors} | {(s.Sustained ? "yes" : "no")} | {Cpu(s.ServerCpuPct)} | {Cpu(s.LoadGenCpuPct)} | {(s.ServerCpuUsPerDelivery < 0 ? "–" : s.ServerCpuUsPerDelivery.ToString("F2", ic))} |\n");
            }
        }

        if (r.Memory.Count > 0)
        {
            sb.Append("\n| Connections | Server RSS (MiB) | Load generator RSS (MiB) |\n|---|---|---|\n");
            foreach (var m in r.Memory)
            {
                sb.Append(ic, $"| {m.Connections} | {m.ServerRssBytes / 1048576.0:F1} | {m.LoadGenRssBytes / 1048576.0:F1} |\n");
            }
        }

        var q = r.Seq;
        sb.Append(ic, $"\nSequence checks: {q.Streams} streams, {q.Received:N0} received, gaps {q.Gaps}, duplicates {q.Duplicates}, reordered {q.Reordered}, lost {q.Lost}, failed final catch-ups {q.CatchUpFailures}.\n");
        if (r.Errors.Count > 0)
        {
            sb.Append("\n| Error | Count |\n|---|---|\n");
            foreach (var (k, v) in r.Errors.OrderByDescending(e => e.Value))
            {
                sb.Append(ic, $"| {k} | {v} |\n");
            }
        }

        foreach (var note in r.Notes)
        {
            sb.Append(ic, $"\n- {note}");
        }

        sb.Append('\n');
        foreach (var svg in svgs)
        {
            sb.Append(ic, $"\n![{svg}]({svg})\n");
        }

        return sb.ToString();
    }
}
