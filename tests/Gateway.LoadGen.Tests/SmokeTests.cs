using System.Text.Json;
using Gateway.LoadGen.Reporting;

namespace Gateway.LoadGen.Tests;

/// <summary>
/// Each scenario, small and short, against the real gateway started by the tool from its build output, with
/// two worker processes on 127.0.0.2 and 127.0.0.3. Checks the report files and that the verdict is sane;
/// never a timing.
/// </summary>
[Collection("smoke")]
public sealed class SmokeTests : IDisposable
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(120);
    private readonly string _out = Path.Combine(Path.GetTempPath(), "loadgen-test-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_out))
        {
            Directory.Delete(_out, recursive: true);
        }
    }

    /// <summary>A failed verdict says why: connect failures, sequence anomalies, error codes and the report's notes.</summary>
    private static void AssertPass(RunReport r) =>
        Assert.True(r.Verdict == "pass", $"verdict {r.Verdict}: connectFailures={r.Metrics.GetValueOrDefault("connectFailures")}, " +
            $"seq gaps/dup/reordered={r.Seq.Gaps}/{r.Seq.Duplicates}/{r.Seq.Reordered}, received={r.Seq.Received}, " +
            $"errors=[{string.Join(", ", r.Errors.Select(e => $"{e.Key}:{e.Value}"))}], steps={r.Steps.Count}, notes: {string.Join(" | ", r.Notes)}");

    private async Task<RunReport> RunAsync(string scenario, params string[] args)
    {
        var code = await LoadGenApp.RunAsync([scenario, "--server", "auto", "--workers", "2", "--out", _out, "--quiet", .. args]).WaitAsync(RunTimeout);
        var json = Path.Combine(_out, $"{scenario}-gateway.json");
        Assert.True(File.Exists(json), $"no report at {json} (exit code {code})");
        Assert.True(File.Exists(Path.Combine(_out, $"{scenario}-gateway.md")));
        var report = JsonSerializer.Deserialize<RunReport>(await File.ReadAllTextAsync(json), ReportWriter.Json)!;
        Assert.Equal(report.Verdict == "fail" ? 1 : 0, code);
        Assert.Equal("2", report.Environment["loadgenWorkers"]);
        return report;
    }

    [Fact]
    public async Task Pairs_delivers_every_message_in_order()
    {
        var r = await RunAsync("pairs", "--pairs", "10", "--rate", "100", "--duration", "2", "--warmup-seconds", "1");
        AssertPass(r);
        Assert.True(r.Metrics["sendsPerSec"] > 0);

        // The tool started the server, so it knows its pid: CPU of both sides in the window, and the server's per delivery.
        Assert.InRange(r.Metrics["serverCpuPct"], 0, 100.0 * Environment.ProcessorCount + 1);
        Assert.True(r.Metrics["loadgenCpuPct"] > 0);
        Assert.True(r.Metrics["serverCpuUsPerDelivery"] >= 0);
        Assert.NotNull(r.Latency);
        Assert.True(r.Latency!.P99 >= r.Latency.P50);
        Assert.Equal((0L, 0L, 0L), (r.Seq.Gaps, r.Seq.Duplicates, r.Seq.Reordered));
        Assert.True(r.Seq.Received > 0);
        Assert.True(File.Exists(Path.Combine(_out, "pairs-gateway-latency.svg")));
        Assert.True(File.Exists(Path.Combine(_out, "pairs-gateway-throughput.svg")));
    }

    [Fact]
    public async Task Broadcast_steps_the_rate_and_reports_a_maximum()
    {
        // Windows of 2 s: workers report once a second, so a 1 s window on a starved machine could hold no report at all
        // and the run would look as if nothing was delivered.
        var r = await RunAsync("broadcast", "--subscribers", "20", "--rate", "20", "--step-seconds", "2", "--max-steps", "2", "--p99-limit-ms", "60000", "--warmup-seconds", "1");
        AssertPass(r);
        Assert.InRange(r.Steps.Count, 1, 2);
        Assert.All(r.Steps, s => Assert.True(s.ServerCpuPct >= 0 && s.LoadGenCpuPct > 0, "every step samples both CPUs"));
        Assert.True(r.Metrics["serverCpuUsPerDeliveryAtMax"] >= 0);
        Assert.True(r.Metrics["maxSustainedDeliveriesPerSec"] > 0);
        Assert.Equal(r.Steps.Where(s => s.Sustained).Max(s => s.DeliveredPerSec), r.Metrics["maxSustainedDeliveriesPerSec"], 0);
        Assert.Equal((0L, 0L, 0L), (r.Seq.Gaps, r.Seq.Duplicates, r.Seq.Reordered));
        Assert.True(File.Exists(Path.Combine(_out, "broadcast-gateway-steps.svg")));
    }

    [Fact]
    public async Task Idle_samples_server_memory_at_each_step()
    {
        var r = await RunAsync("idle", "--steps", "50,100", "--settle-seconds", "0.5");
        AssertPass(r);
        Assert.Equal([0, 50, 100], r.Memory.Select(m => m.Connections));
        Assert.All(r.Memory, m => Assert.True(m.ServerRssBytes > 0));
        Assert.True(r.Metrics.ContainsKey("serverBytesPerConnection"));
        Assert.Equal(100, r.Metrics["connected"]);
        Assert.True(File.Exists(Path.Combine(_out, "idle-gateway-memory.svg")));
    }

    [Fact]
    public async Task Connect_storm_counts_handshakes()
    {
        var r = await RunAsync("connect", "--connections", "100");
        AssertPass(r);
        Assert.Equal(100, r.Metrics["connected"]);
        Assert.True(r.Metrics["connectsPerSec"] > 0);
        Assert.Equal(100, r.ConnectLatency!.Count);
    }

    [Fact]
    public async Task Soak_with_churn_loses_nothing()
    {
        var r = await RunAsync("soak", "--chats", "4", "--members", "5", "--rate", "100", "--duration", "4", "--churn", "0.3");
        AssertPass(r);
        Assert.True(r.Metrics["reconnects"] > 0, "churn must actually reconnect clients");
        Assert.Equal((0L, 0L, 0L, 0L), (r.Seq.Lost, r.Seq.Duplicates, r.Seq.Reordered, r.Seq.CatchUpFailures));
        Assert.Equal(20, r.Seq.Streams);
        Assert.True(r.Seq.Received > 0);
    }

    [Fact]
    public async Task Summarize_writes_medians_and_ratios()
    {
        Directory.CreateDirectory(_out);
        foreach (var (target, value, i) in new[] { ("gateway", 300.0, 0), ("gateway", 100.0, 1), ("gateway", 200.0, 2), ("peer", 100.0, 3) })
        {
            var report = new RunReport { Scenario = "broadcast", Target = target, Label = $"r{i}", Metrics = { ["maxSustainedDeliveriesPerSec"] = value } };
            ReportWriter.Write(report, _out);
        }

        var md = Path.Combine(_out, "summary.md");
        Assert.Equal(0, await LoadGenApp.RunAsync(["summarize", "--out", md, _out]));
        var text = await File.ReadAllTextAsync(md);
        Assert.Contains("| gateway | 3 |", text, StringComparison.Ordinal);
        Assert.Contains("200 (100–300)", text, StringComparison.Ordinal);
        Assert.Contains("2×", text, StringComparison.Ordinal);
    }
}
