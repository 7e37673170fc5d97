using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.RegularExpressions;
using Gateway.Server.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Gateway.Server.Tests;

/// <summary>Logs as shipped: one line per entry with a UTC ISO-8601 timestamp (or JSON by configuration), one start-up
/// line, a line per drain phase, and nothing per request (health probes included).</summary>
public sealed partial class LoggingTests
{
    [Fact]
    public async Task Default_logs_are_single_lines_with_an_ISO_timestamp_one_startup_line_drain_lines_and_no_request_lines()
    {
        var lines = await RunAndProbeAsync();
        Assert.NotEmpty(lines);
        foreach (var line in lines)
        {
            Assert.Matches(IsoLine(), line);
            Assert.DoesNotContain("healthz", line, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("readyz", line, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("Request starting", line, StringComparison.Ordinal);
        }

        var started = Assert.Single(lines, l => l.Contains(" started: role all;", StringComparison.Ordinal));
        Assert.Contains($"chatgw {FileVersionInfo.GetVersionInfo(GatewayProcess.ServerDll()).ProductVersion} started", started, StringComparison.Ordinal);
        Assert.Contains("WebSocket ws://127.0.0.1:", started, StringComparison.Ordinal);
        Assert.Contains("store RocksDB", started, StringComparison.Ordinal);
        Assert.Contains("DEVELOPMENT HS256 key", started, StringComparison.Ordinal);
        Assert.Single(lines, l => l.Contains("warn:", StringComparison.Ordinal) && l.Contains("Development keys in use", StringComparison.Ordinal));
        Assert.Single(lines, l => l.Contains("Draining ", StringComparison.Ordinal));
        Assert.Single(lines, l => l.Contains("Drain complete", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Json_logs_by_configuration_with_ISO_timestamps()
    {
        var lines = await RunAndProbeAsync("--Logging:Console:FormatterName=json");
        Assert.NotEmpty(lines);
        foreach (var line in lines)
        {
            using var entry = JsonDocument.Parse(line);
            Assert.Matches(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$", entry.RootElement.GetProperty("Timestamp").GetString());
            Assert.DoesNotContain("healthz", line, StringComparison.OrdinalIgnoreCase);
        }

        Assert.Single(lines, l => JsonDocument.Parse(l).RootElement.GetProperty("Message").GetString()!.Contains(" started: role all;", StringComparison.Ordinal));
    }

    [Fact]
    public void The_throttle_lets_one_line_through_per_period_and_counts_the_rest()
    {
        var time = new FakeTimeProvider();
        var throttle = new LogThrottle(time, TimeSpan.FromSeconds(10));
        Assert.True(throttle.TryEnter(out var suppressed));
        Assert.Equal(0, suppressed);
        for (var i = 0; i < 5; i++)
        {
            Assert.False(throttle.TryEnter(out _));
        }

        time.Advance(TimeSpan.FromSeconds(9));
        Assert.False(throttle.TryEnter(out _));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(throttle.TryEnter(out suppressed));
        Assert.Equal(6, suppressed);
        time.Advance(TimeSpan.FromSeconds(30));
        Assert.True(throttle.TryEnter(out suppressed));
        Assert.Equal(0, suppressed);
    }

    /// <summary>Starts the real server with the shipped logging configuration, probes health and readiness, sends SIGTERM,
    /// and returns what it wrote.</summary>
    private static async Task<List<string>> RunAndProbeAsync(params string[] extra)
    {
        var dir = TestGateway.NewTempDirectory();
        var portsFile = Path.Combine(dir, "ports.json");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in (string[])[GatewayProcess.ServerDll(), "--Gateway:WebSocketEndpoint=127.0.0.1:0", "--Gateway:HttpEndpoint=127.0.0.1:0",
            $"--Gateway:DataDirectory={dir}", $"--Gateway:PortsFile={portsFile}", "--Gateway:DrainGraceSeconds=1", .. extra])
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (!File.Exists(portsFile))
            {
                Assert.False(process.HasExited, "the server exited");
                Assert.True(DateTime.UtcNow < deadline, "the server did not start");
                await Task.Delay(50);
            }

            var ports = JsonSerializer.Deserialize<Dictionary<string, string>>(await File.ReadAllTextAsync(portsFile))!;
            using var http = new HttpClient { BaseAddress = new Uri(ports["http"]) };
            for (var i = 0; i < 5; i++)
            {
                Assert.Equal("ok", await http.GetStringAsync("/healthz"));
                using var ready = await http.GetAsync("/readyz");
            }

            // An admin call without credentials (401) writes nothing either.
            using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/admin/tenants/t1/chats/c1/members");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "wrong");
            using var denied = await http.SendAsync(request);

            using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync();
            }

            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal("", await stderr);
            return [.. (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
            }

            Directory.Delete(dir, recursive: true);
        }
    }

    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z (info|warn|fail|crit|dbug|trce): ")]
    private static partial Regex IsoLine();
}
