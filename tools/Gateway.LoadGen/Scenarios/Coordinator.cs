using System.Diagnostics;
using System.Globalization;
using Gateway.LoadGen.Measurement;
using Gateway.LoadGen.Reporting;
using Gateway.LoadGen.Targets;
using Gateway.LoadGen.Workers;
using Gateway.Tools.Common;
using HdrHistogram;

namespace Gateway.LoadGen.Scenarios;

/// <summary>
/// Runs one scenario: sets up rooms, spreads clients over worker processes (each on its own source address),
/// drives them with commands, records the timeline from their ticks, and fills the report.
/// </summary>
internal sealed partial class Coordinator : IAsyncDisposable
{
    // The open-files limit is 20,000 per process; ~100 stay for the runtime, pipes and the plan file.
    private const int MaxPerWorker = 19_900;
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(10);

    private readonly CommandLine _cli;
    private readonly TargetSettings _settings;
    private readonly ILoadTarget _target;
    private readonly int? _serverPid;
    private readonly Aggregator _aggregator = new();
    private readonly List<WorkerProxy> _workers = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly string _runId = Guid.NewGuid().ToString("N")[..8];
    private readonly CancellationTokenSource _progressStop = new();
    private Task? _progress;

    public Coordinator(CommandLine cli, TargetSettings settings, int? serverPid, RunReport report)
    {
        _cli = cli;
        _settings = settings;
        _target = TargetRegistry.Create(settings);
        _serverPid = serverPid;
        Report = report;
    }

    public RunReport Report { get; }

    /// <summary>CPU time of the server and of the load generator (this process and its workers) at one instant.</summary>
    private readonly record struct CpuMark(long Timestamp, long Server, long LoadGen);

    private CpuMark MarkCpu()
    {
        var loadGen = ProcStatus.CpuTicks(Environment.ProcessId);
        foreach (var w in _workers)
        {
            var ticks = ProcStatus.CpuTicks(w.Pid);
            if (loadGen >= 0 && ticks >= 0)
            {
                loadGen += ticks;
            }
        }

        return new CpuMark(Stopwatch.GetTimestamp(), _serverPid is { } pid ? ProcStatus.CpuTicks(pid) : -1, loadGen);
    }

    /// <summary>One measured window: counters and latencies from the workers, and the CPU both sides used meanwhile.</summary>
    private async Task<(Totals Window, double ServerCpuPct, double LoadGenCpuPct)> MeasureWindowAsync(double seconds)
    {
        _aggregator.BeginWindow();
        var cpu = MarkCpu();
        await Delay(seconds).ConfigureAwait(false);
        var window = _aggregator.EndWindow();
        var (server, loadGen) = CpuPercent(cpu, MarkCpu());
        return (window, server, loadGen);
    }

    /// <summary>CPU used between two marks, in % of one CPU (-1 where a process could not be read). 10 ms ticks: over a
    /// window of a few seconds that is a fraction of a percent.</summary>
    private static (double Server, double LoadGen) CpuPercent(CpuMark from, CpuMark to)
    {
        var seconds = Stopwatch.GetElapsedTime(from.Timestamp, to.Timestamp).TotalSeconds;
        double Pct(long a, long b) => a < 0 || b < 0 || seconds <= 0 ? -1 : Math.Round((b - a) / ProcStatus.TicksPerSecond / seconds * 100, 1);
        return (Pct(from.Server, to.Server), Pct(from.LoadGen, to.LoadGen));
    }

    /// <summary>Server CPU per delivery is the efficiency figure that survives a saturated load generator (a maximum
    /// rate then measures the generator); both CPU shares say which side was the bottleneck.</summary>
    private void AddCpuMetrics(double serverCpuPct, double loadGenCpuPct, double serverUsPerDelivery, string suffix)
    {
        if (serverCpuPct >= 0)
        {
            Report.Metrics["serverCpuPct" + suffix] = serverCpuPct;
            Report.Metrics["serverCpuUsPerDelivery" + suffix] = serverUsPerDelivery;
        }

        if (loadGenCpuPct >= 0)
        {
            Report.Metrics["loadgenCpuPct" + suffix] = loadGenCpuPct;
        }
    }

    /// <summary>Says so in the report when the load generator used (nearly) all the CPUs it may run on.</summary>
    private void NoteSaturatedLoadGen(IEnumerable<double> loadGenCpuPcts)
    {
        var cpus = Environment.ProcessorCount; // the affinity mask's size: 1 under taskset -c 1
        if (loadGenCpuPcts.Any(p => p >= 90.0 * cpus))
        {
            Report.Notes.Add($"The load generator used ≥ 90 % of its {cpus} CPU(s) in at least one measured window: there the " +
                "rates and latencies are bounded by the generator, not only by the server. Compare server CPU per delivery.");
        }
    }

    public async Task RunAsync(string scenario)
    {
        switch (scenario)
        {
            case "idle":
                await IdleAsync().ConfigureAwait(false);
                break;
            case "broadcast":
                await BroadcastAsync().ConfigureAwait(false);
                break;
            case "pairs":
                await PairsAsync().ConfigureAwait(false);
                break;
            case "connect":
                await ConnectStormAsync().ConfigureAwait(false);
                break;
            case "soak":
                await SoakAsync().ConfigureAwait(false);
                break;
            default:
                throw new ArgumentException($"unknown scenario '{scenario}' (idle, broadcast, pairs, connect, soak)");
        }

        // The workers' last ticks come before their exit answer: stop them first, then every count is in.
        await StopWorkersAsync().ConfigureAwait(false);
        Report.DurationSeconds = _clock.Elapsed.TotalSeconds;
        var run = _aggregator.Run;
        Report.Latency ??= Summarize(run.Latency);
        Report.ConnectLatency ??= Summarize(run.ConnectLatency);
        foreach (var (code, n) in run.Errors)
        {
            Report.Errors[code] = Report.Errors.GetValueOrDefault(code) + n;
        }

        if (Report.Seq is { Gaps: > 0 } or { Duplicates: > 0 } or { Reordered: > 0 })
        {
            Report.Notes.Add("Sequence anomalies were seen: a gap, duplicate or reordering is a bug in the target (or the tool).");
            Report.Verdict = "fail";
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopWorkersAsync().ConfigureAwait(false);
        await _progressStop.CancelAsync().ConfigureAwait(false);
        if (_progress is { } p)
        {
            await p.ConfigureAwait(false);
        }
    }

    private string Room(string name) => $"{_runId}-{name}";

    private string User(string role, int i) => $"{_runId}-{role}{i}";

    private Task CreateRoomsAsync(IEnumerable<(string Room, string[] Members)> rooms) =>
        Parallel.ForEachAsync(rooms, new ParallelOptions { MaxDegreeOfParallelism = 8 },
            async (r, ct) => await _target.CreateRoomAsync(r.Room, r.Members, ct).ConfigureAwait(false));

    /// <summary>Splits the clients over workers in contiguous blocks (clients listed first land in worker 0).</summary>
    private void StartWorkers(IReadOnlyList<ClientSpec> clients)
    {
        var wanted = Math.Max(_cli.Int("--workers", 1), (clients.Count + MaxPerWorker - 1) / MaxPerWorker);
        var per = (clients.Count + wanted - 1) / Math.Max(1, wanted);
        var size = _cli.Int("--size", 100);
        for (var w = 0; w < wanted; w++)
        {
            var share = clients.Skip(w * per).Take(per).ToList();
            if (share.Count == 0 && w > 0)
            {
                break;
            }

            var plan = new WorkerPlan { Target = _settings, SourceAddress = SourceAddress(w), Clients = share, MessageSize = size };
            _workers.Add(WorkerProxy.Start(w, plan, _aggregator));
        }

        Report.Environment["loadgenWorkers"] = _workers.Count.ToString(CultureInfo.InvariantCulture);
        Report.Environment["sourceAddresses"] = _cli.Flag("--no-bind") ? "kernel default" : string.Join(",", _workers.Select((_, i) => SourceAddress(i)));
        _progress = ProgressLoopAsync(_progressStop.Token);
    }

    private string? SourceAddress(int worker)
    {
        if (_cli.Flag("--no-bind"))
        {
            return null;
        }

        // 127.0.0.2, 127.0.0.3, …: every address in 127/8 is local on Linux; each gives ~28k ephemeral ports.
        var baseAddress = System.Net.IPAddress.Parse(_cli.Get("--source-base", "127.0.0.2")).GetAddressBytes();
        baseAddress[3] = (byte)(baseAddress[3] + worker);
        return new System.Net.IPAddress(baseAddress).ToString();
    }

    /// <summary>Connects <paramref name="total"/> clients in all (cumulative), each worker its proportional share.</summary>
    private async Task<(long Ok, long Failed)> ConnectUpToAsync(int total, bool subscribe)
    {
        var all = _workers.Sum(w => w.ClientCount);
        var concurrency = _cli.Int("--concurrency", 64);
        var tasks = new List<Task<WorkerEvent>>();
        foreach (var w in _workers)
        {
            var target = (int)Math.Round((double)total * w.ClientCount / all);
            var count = Math.Max(0, target - w.Requested);
            w.Requested += count;
            tasks.Add(w.CommandAsync(new WorkerCommand { Op = "connect", Count = count, Subscribe = subscribe, Concurrency = concurrency }, CommandTimeout));
        }

        var done = await Task.WhenAll(tasks).ConfigureAwait(false);
        return (done.Sum(d => d.Ok), done.Sum(d => d.Failed));
    }

    /// <summary>Sets the total publish rate, split over workers by how many publishers each holds.</summary>
    private Task SetRateAsync(double rate)
    {
        var publishers = _workers.Sum(w => w.PublisherCount);
        return Task.WhenAll(_workers.Where(w => w.PublisherCount > 0).Select(w =>
            w.CommandAsync(new WorkerCommand { Op = "rate", Rate = rate * w.PublisherCount / publishers }, CommandTimeout)));
    }

    private Task BroadcastCommandAsync(WorkerCommand command) =>
        Task.WhenAll(_workers.Select(w => w.CommandAsync(command, CommandTimeout)));

    private async Task StopWorkersAsync()
    {
        if (_workers.Count == 0)
        {
            return;
        }

        var exits = await Task.WhenAll(_workers.Select(w => w.ExitAsync(TimeSpan.FromMinutes(2)))).ConfigureAwait(false);
        if (Report.Scenario != "soak")
        {
            // Outside the soak the seq totals come from the workers' last word (no final catch-up).
            Report.Seq = exits.Where(e => e?.Seq is not null).Aggregate(new SeqStats(), (a, e) => a + e!.Seq!);
        }

        foreach (var w in _workers)
        {
            await w.DisposeAsync().ConfigureAwait(false);
        }

        _workers.Clear();
    }

    private static Task Delay(double seconds) => Task.Delay(TimeSpan.FromSeconds(seconds));

    private async Task ProgressLoopAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        var quiet = _cli.Flag("--quiet");
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                var s = _aggregator.TakeSecond();
                var (active, rss) = _aggregator.Workers();
                var p99 = Histograms.Ms(s.Latency, 99);
                var point = new TimelinePoint(Math.Round(_clock.Elapsed.TotalSeconds, 1), s.Sent, s.Delivered, s.Connects, p99, active, s.Errors.Values.Sum());
                Report.Timeline.Add(point);
                if (!quiet)
                {
                    var server = _serverPid is { } pid ? $" srvRSS={ProcStatus.RssBytes(pid) / (1 << 20)}MiB" : "";
                    Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"[{Report.Scenario} {Report.Target}] t={point.T,5:F0}s conn={active} sent/s={s.Sent} deliv/s={s.Delivered} connects/s={s.Connects} p99={p99:F2}ms err={point.Errors} lgRSS={rss / (1 << 20)}MiB{server}"));
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    internal static LatencySummary? Summarize(HistogramBase h)
    {
        if (h.TotalCount == 0)
        {
            return null;
        }

        // Percentile spectrum for the plot: 0, 50, 75, 87.5, … halving the distance to 100 % each step, down to
        // 99.999 %: the usual HdrHistogram view, where tails get as much room as the median.
        var spectrum = new List<double[]>();
        for (var k = 0; k <= 16; k++)
        {
            var p = 100 * (1 - Math.Pow(0.5, k));
            spectrum.Add([p, h.GetValueAtPercentile(p) / 1000.0]);
        }

        spectrum.Add([99.999, h.GetValueAtPercentile(99.999) / 1000.0]);
        return new LatencySummary(h.TotalCount, Histograms.Ms(h, 50), Histograms.Ms(h, 90), Histograms.Ms(h, 99), Histograms.Ms(h, 99.9),
            h.GetMaxValue() / 1000.0, h.GetMean() / 1000.0, spectrum);
    }
}
