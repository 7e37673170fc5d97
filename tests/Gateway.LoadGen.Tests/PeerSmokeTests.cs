using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Gateway.LoadGen.Reporting;

namespace Gateway.LoadGen.Tests;

/// <summary>
/// One comparison peer end to end through the load generator: the real nats-server (bench/peers/nats-ws/start.sh,
/// loopback only, token auth on) driven by the registered <c>nats-ws</c> target. Checks that the peer adapter
/// delivers, that order is checked by the payload counter (the peer has no seq), and that a wrong token is refused.
/// </summary>
[Collection("smoke")]
public sealed class PeerSmokeTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly string _out = Path.Combine(Path.GetTempPath(), "loadgen-peer-test-" + Guid.NewGuid().ToString("N"));
    private readonly string _token = Guid.NewGuid().ToString("N");
    private Process? _server;
    private int _port;

    public async Task InitializeAsync()
    {
        _port = FreePort();
        var start = new ProcessStartInfo(Path.Combine(RepoRoot(), "bench", "peers", "nats-ws", "start.sh"), _port.ToString(System.Globalization.CultureInfo.InvariantCulture))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["PEER_NATS_TOKEN"] = _token;
        _server = Process.Start(start)!;
        _server.ErrorDataReceived += (_, _) => { };
        _server.BeginErrorReadLine();
        using var cts = new CancellationTokenSource(Timeout);
        while (await _server.StandardOutput.ReadLineAsync(cts.Token) is { } line)
        {
            if (line == "READY")
            {
                return;
            }
        }

        throw new InvalidOperationException("nats-server exited before READY");
    }

    public Task DisposeAsync()
    {
        if (_server is { HasExited: false })
        {
            _server.Kill(entireProcessTree: true);
            _server.WaitForExit(10_000);
        }

        _server?.Dispose();
        if (Directory.Exists(_out))
        {
            Directory.Delete(_out, recursive: true);
        }

        return Task.CompletedTask;
    }

    private async Task<(int Code, RunReport Report)> RunAsync(string scenario, string token, params string[] args)
    {
        var code = await LoadGenApp.RunAsync(
        [
            scenario, "--target", "nats-ws", "--endpoint", $"ws://127.0.0.1:{_port}/", "--token", token,
            "--server-pid", _server!.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), "--workers", "2", "--out", _out, "--quiet", .. args,
        ]).WaitAsync(Timeout);
        var json = Path.Combine(_out, $"{scenario}-nats-ws.json");
        Assert.True(File.Exists(json), $"no report at {json} (exit code {code})");
        return (code, JsonSerializer.Deserialize<RunReport>(await File.ReadAllTextAsync(json), ReportWriter.Json)!);
    }

    [Fact]
    public async Task Pairs_through_the_nats_peer_are_checked_by_the_payload_counter()
    {
        var (code, r) = await RunAsync("pairs", _token, "--pairs", "10", "--rate", "100", "--duration", "2", "--warmup-seconds", "1");
        Assert.Equal(0, code);
        Assert.Equal("pass", r.Verdict);
        Assert.Equal("nats-ws", r.Target);
        Assert.Equal("shared token (string compare)", r.Environment["auth"]);
        Assert.True(r.Metrics["deliveriesPerSec"] > 0);
        Assert.True(r.Seq.Received > 0);
        Assert.Equal((0L, 0L, 0L), (r.Seq.Gaps, r.Seq.Duplicates, r.Seq.Reordered));
        Assert.Equal(_server!.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), r.Environment["serverPid"]);
    }

    [Fact]
    public async Task A_wrong_token_is_refused()
    {
        var (_, r) = await RunAsync("connect", "not-the-token", "--connections", "20");
        Assert.Equal(0, r.Metrics["connected"]);
        Assert.Equal(20, r.Metrics["connectFailures"]);
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (Directory.Exists(Path.Combine(d.FullName, "bench", "peers", "nats-ws")))
            {
                return d.FullName;
            }
        }

        throw new DirectoryNotFoundException("bench/peers/nats-ws not found above the test's output directory");
    }
}
