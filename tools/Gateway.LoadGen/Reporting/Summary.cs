using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Gateway.LoadGen.Reporting;

/// <summary>
/// <c>summarize --out FILE.md DIR...</c>: reads every run report (*.json) under the directories, groups them by
/// scenario and target, and writes median, spread (min–max) and the ratio of our gateway's median to each peer's.
/// </summary>
public static class Summary
{
    // Metrics where a smaller number is better: the ratio is then peer / gateway, so "> 1" always means we win.
    private static readonly HashSet<string> LowerIsBetter = ["p50Ms", "p99Ms", "p999Ms", "p99MsAtMax", "serverBytesPerConnection", "stormSeconds",
        "serverCpuUsPerDelivery", "serverCpuUsPerDeliveryAtMax"];

    // Context, not a score: CPU shares depend on the rate each target reached. No ratio is printed for them.
    private static readonly HashSet<string> NoRatio = ["serverCpuPct", "serverCpuPctAtMax", "loadgenCpuPct", "loadgenCpuPctAtMax"];

    internal static int Run(CommandLine cli)
    {
        var output = cli.Get("--out") ?? throw new ArgumentException("summarize needs --out FILE.md");
        var reports = cli.Positional
            .SelectMany(d => Directory.Exists(d) ? Directory.EnumerateFiles(d, "*.json", SearchOption.AllDirectories) : [d])
            .Select(f => TryRead(f))
            .Where(r => r is not null)
            .Select(r => r!)
            .ToList();
        File.WriteAllText(output, Render(reports, cli.Get("--title", "Load comparison"), cli.Get("--preamble", "")));
        Console.WriteLine(output);
        return reports.Count > 0 ? 0 : 1;
    }

    /// <summary>The comparison page as Markdown.</summary>
    public static string Render(IReadOnlyList<RunReport> reports, string title, string preamble)
    {
        ArgumentNullException.ThrowIfNull(reports);
        var ic = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(ic, $"# {title}\n\n");
        if (preamble.Length > 0)
        {
            sb.Append(preamble).Append("\n\n");
        }

        foreach (var scenario in reports.GroupBy(GroupKey).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            sb.Append(ic, $"## {scenario.Key}\n\n");
            var first = scenario.First();
            sb.Append("Parameters: ").Append(string.Join(", ", first.Parameters.Select(p => $"{p.Key}={p.Value}"))).Append(".  \n");
            sb.Append("Environment: ").Append(string.Join(", ", first.Environment.Where(e => e.Key != "serverPid").Select(p => $"{p.Key}={p.Value}"))).Append(".\n\n");
            var targets = scenario.GroupBy(r => r.Target).OrderBy(g => g.Key == "gateway" ? "" : g.Key, StringComparer.Ordinal).ToList();
            var metrics = scenario.SelectMany(r => r.Metrics.Keys).Distinct().ToList();
            sb.Append("| Target | Runs | Verdicts |");
            foreach (var m in metrics)
            {
                sb.Append(ic, $" {m} median (min–max) |");
            }

            sb.Append('\n').Append("|---|---|---|").Append(string.Concat(metrics.Select(_ => "---|"))).Append('\n');
            foreach (var t in targets)
            {
                sb.Append(ic, $"| {t.Key} | {t.Count()} | {string.Join(" ", t.Select(r => r.Verdict))} |");
                foreach (var m in metrics)
                {
                    var values = t.Where(r => r.Metrics.ContainsKey(m)).Select(r => r.Metrics[m]).ToList();
                    sb.Append(values.Count == 0 ? " – |" : string.Create(ic, $" {Median(values):0.###} ({values.Min():0.###}–{values.Max():0.###}) |"));
                }

                sb.Append('\n');
            }

            var ours = targets.FirstOrDefault(t => t.Key == "gateway");
            var peers = targets.Where(t => t.Key != "gateway").ToList();
            if (ours is not null && peers.Count > 0)
            {
                sb.Append("\nRatios of medians (> 1 means the gateway is better):\n\n| Metric |").Append(string.Concat(peers.Select(p => $" vs {p.Key} |"))).Append('\n');
                sb.Append("|---|").Append(string.Concat(peers.Select(_ => "---|"))).Append('\n');
                foreach (var m in metrics.Where(m => !NoRatio.Contains(m)))
                {
                    sb.Append(ic, $"| {m} |");
                    foreach (var p in peers)
                    {
                        var a = MedianOf(ours, m);
                        var b = MedianOf(p, m);
                        var ratio = a is null || b is null || a == 0 || b == 0 ? (double?)null : LowerIsBetter.Contains(m) ? b / a : a / b;
                        sb.Append(ratio is { } r ? string.Create(ic, $" {r:0.##}× |") : " – |");
                    }

                    sb.Append('\n');
                }
            }

            sb.Append('\n');
        }

        return sb.ToString();
    }

    /// <summary>
    /// Runs are compared within a scenario and, for broadcast, within one fanout: S = 100 and S = 1,000 are different
    /// experiments whose medians must not mix.
    /// </summary>
    private static string GroupKey(RunReport r) =>
        r.Scenario == "broadcast" && r.Parameters.TryGetValue("subscribers", out var s) ? $"broadcast, S = {s}" : r.Scenario;

    private static double? MedianOf(IEnumerable<RunReport> runs, string metric)
    {
        var values = runs.Where(r => r.Metrics.ContainsKey(metric)).Select(r => r.Metrics[metric]).ToList();
        return values.Count == 0 ? null : Median(values);
    }

    /// <summary>The middle value (mean of the two middle ones for an even count).</summary>
    public static double Median(IReadOnlyList<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var sorted = values.Order().ToList();
        var n = sorted.Count;
        return n == 0 ? 0 : n % 2 == 1 ? sorted[n / 2] : (sorted[(n / 2) - 1] + sorted[n / 2]) / 2;
    }

    private static RunReport? TryRead(string file)
    {
        try
        {
            var r = JsonSerializer.Deserialize<RunReport>(File.ReadAllText(file), ReportWriter.Json);
            return r is { Scenario.Length: > 0 } ? r : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
