using Gateway.Tools.Common;
using HdrHistogram;

namespace Gateway.LoadGen.Workers;

/// <summary>Totals of a window of ticks: counters and merged histograms.</summary>
internal sealed class Totals
{
    public long Sent;
    public long Delivered;
    public long Connects;
    public long ConnectFailures;
    public long Reconnects;
    public Dictionary<string, long> Errors { get; } = new(StringComparer.Ordinal);
    public HistogramBase Latency { get; } = Histograms.NewHistogram();
    public HistogramBase ConnectLatency { get; } = Histograms.NewHistogram();

    public void Add(WorkerEvent e)
    {
        Sent += e.Sent;
        Delivered += e.Delivered;
        Connects += e.Connects;
        ConnectFailures += e.ConnectFailures;
        Reconnects += e.Reconnects;
        foreach (var (code, n) in e.Errors ?? [])
        {
            Errors[code] = Errors.GetValueOrDefault(code) + n;
        }

        if (e.Latency is { } l)
        {
            Latency.Add(Histograms.Decode(l));
        }

        if (e.ConnectLatency is { } c)
        {
            ConnectLatency.Add(Histograms.Decode(c));
        }
    }
}

/// <summary>
/// Merges the workers' per-second ticks: into the run's totals, into the current measurement window (a broadcast
/// step), and into the current second (the progress line and the timeline). Ticks arrive on the proxies' reader
/// threads, hence the lock.
/// </summary>
internal sealed class Aggregator
{
    private readonly Lock _lock = new();
    private readonly Dictionary<int, (int Active, long Rss)> _workers = [];
    private Totals _second = new();
    private Totals? _window;

    public Totals Run { get; } = new();

    public void Add(int worker, WorkerEvent tick)
    {
        lock (_lock)
        {
            Run.Add(tick);
            _second.Add(tick);
            _window?.Add(tick);
            _workers[worker] = (tick.Active, tick.RssBytes);
        }
    }

    public (int Active, long WorkerRss) Workers()
    {
        lock (_lock)
        {
            return (_workers.Values.Sum(w => w.Active), _workers.Values.Sum(w => w.Rss));
        }
    }

    /// <summary>Takes what arrived since the last call.</summary>
    public Totals TakeSecond()
    {
        lock (_lock)
        {
            var s = _second;
            _second = new Totals();
            return s;
        }
    }

    public void BeginWindow()
    {
        lock (_lock)
        {
            _window = new Totals();
        }
    }

    public Totals EndWindow()
    {
        lock (_lock)
        {
            var w = _window ?? new Totals();
            _window = null;
            return w;
        }
    }
}
