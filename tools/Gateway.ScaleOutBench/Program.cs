using System.Diagnostics;
using System.Runtime.InteropServices;
using Gateway.ScaleOutBench;

BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (ArgumentException e) when (args.Length > 0)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(BenchOptions.Usage);
    return 2;
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

// A hard stop well past the expected ~6-8 minutes (6 runs × ~1 min): a wedged run must not hold the machine.
using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(20));

// Ctrl-C, kill and a closed terminal stop the bench the orderly way: the current test is cancelled, its servers are
// killed and their temp directories removed, and the report says which run was cut short.
void OnSignal(PosixSignalContext context)
{
    context.Cancel = true;
    stop.Cancel();
}

using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, OnSignal);

var env = new Report.RunEnvironment { NatsVersion = NatsVersion(options.NatsServer) };
var runs = new List<RunResult>();
var failures = new List<string>();
var clock = Stopwatch.StartNew();
for (var run = 1; run <= options.Runs && !stop.IsCancellationRequested; run++)
{
    foreach (var setup in new[] { "distributed", "embedded" })
    {
        if (stop.IsCancellationRequested)
        {
            break;
        }

        env.Order.Add(setup[0].ToString());
        Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] run {run}/{options.Runs}: {setup}");
        try
        {
            runs.Add(await RunOnceAsync(setup, run, options, stop.Token).ConfigureAwait(false));
            var r = runs[^1];
            Console.WriteLine($"  delivery p50 {r.Latency.Delivery.P50:0.00} ms, p99 {r.Latency.Delivery.P99:0.00} ms ({r.Latency.Received}/{r.Latency.Sent}); " +
                $"one chat {r.OneChat.AcksPerSecond:0}/s; many chats {r.ManyChats.AcksPerSecond:0}/s");
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or HttpRequestException or System.Net.WebSockets.WebSocketException
            or IOException or NATS.Client.Core.NatsException or OperationCanceledException)
        {
            failures.Add($"{setup} run {run}: {e.GetType().Name}: {e.Message}");
            Console.Error.WriteLine(stop.IsCancellationRequested ? "  stopped (signal or 20-minute limit)" : $"  FAILED: {e}");
        }
    }
}

env.LoadAfter = Report.RunEnvironment.LoadAverage();
Directory.CreateDirectory(Path.GetDirectoryName(options.Out)!);
await File.WriteAllTextAsync(options.Out, Report.Write(options, runs, failures, env)).ConfigureAwait(false);
Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] wrote {options.Out}");
return failures.Count == 0 ? 0 : 1;

static async Task<RunResult> RunOnceAsync(string setup, int run, BenchOptions o, CancellationToken ct)
{
    await using var d = setup == "distributed"
        ? await Deployment.StartDistributedAsync(o, ct).ConfigureAwait(false)
        : await Deployment.StartEmbeddedAsync(o, ct).ConfigureAwait(false);
    var latency = await Measure.LatencyAsync(d, o, run, ct).ConfigureAwait(false);
    var one = await Measure.ThroughputAsync(d, o, "one", 1, o.OneChatSenders, o.OneChatInFlight, ct).ConfigureAwait(false);
    var many = await Measure.ThroughputAsync(d, o, "many", o.Chats, 1, o.ManyInFlight, ct).ConfigureAwait(false);
    ProbeResult? probe = null;
    if (o.Probe && d.NatsUrl is { } url)
    {
        try
        {
            probe = await NatsProbe.RunAsync(url, o.LatencyRate, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NATS.Client.Core.NatsException or TimeoutException or InvalidOperationException)
        {
            // The probe only explains the numbers; its failure must not void the run's measurements.
            Console.Error.WriteLine($"  probe failed: {e.Message}");
        }
    }

    return new RunResult(setup, run, latency, one, many, probe);
}

static string NatsVersion(string binary)
{
    try
    {
        using var p = Process.Start(new ProcessStartInfo(binary, "--version") { RedirectStandardOutput = true, UseShellExecute = false });
        var text = p?.StandardOutput.ReadToEnd().Trim();
        p?.WaitForExit(5000);
        return string.IsNullOrEmpty(text) ? "nats-server" : text;
    }
    catch (System.ComponentModel.Win32Exception)
    {
        return "nats-server (version unknown)";
    }
}
