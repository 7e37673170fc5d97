using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Gateway.Domain;

/// <summary>
/// The write path's instruments on meter <c>Gateway</c>, shared by both write services (embedded: one RocksDB synced batch
/// per commit; writer role: one JetStream append per commit).
/// </summary>
/// <remarks>
/// Static, created once per process and never disposed: a metrics SDK merges instruments of the same name and meter into
/// one stream, and disposing one such instrument (a host that stops while another runs in the same process, as in the
/// test suites) would retire the merged stream for everyone. Gauges therefore read a registry of live sources instead of
/// being created per instance.
/// </remarks>
public static class WriteMetrics
{
    /// <summary>The meter name every instrument of this system uses.</summary>
    public const string MeterName = "Gateway";

    /// <summary>Bucket bounds for latencies in seconds: 0.1 ms to 10 s, dense where a commit and a delivery usually lie.</summary>
    public static readonly IReadOnlyList<double> LatencyBuckets =
        [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private static readonly Meter Meter = new(MeterName);
    private static readonly ConcurrentDictionary<object, Func<long>> QueueSources = new(ReferenceEqualityComparer.Instance);

    /// <summary><c>gateway.commit.duration</c>: one durable commit (a synced RocksDB batch, or a JetStream append with ack).</summary>
    public static readonly Histogram<double> CommitDuration = Meter.CreateHistogram(
        "gateway.commit.duration", "s", "One durable commit: a synced RocksDB batch (embedded) or a JetStream append with ack (writer)",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });

    /// <summary><c>gateway.commit.batch.size</c>: commands made durable by one commit.</summary>
    public static readonly Histogram<int> CommitBatchSize = Meter.CreateHistogram(
        "gateway.commit.batch.size", "{command}", "Commands made durable by one commit (one fsync'd batch; always 1 in the writer role)",
        advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] });

    /// <summary><c>gateway.commit.queue.depth</c>: commands waiting, over every live source (<see cref="AddQueueSource"/>).</summary>
    public static readonly ObservableGauge<long> CommitQueueDepth = Meter.CreateObservableGauge(
        "gateway.commit.queue.depth", ObserveQueue, "{command}", "Commands waiting for the commit loop (embedded) or for their chat's append (writer)");

    /// <summary>Records one successful commit of <paramref name="commands"/> commands that took <paramref name="seconds"/>
    /// (the caller has read the clock already: the commit time is its timestamp too).</summary>
    public static void RecordCommit(double seconds, int commands)
    {
        CommitDuration.Record(seconds);
        CommitBatchSize.Record(commands);
    }

    /// <summary>Adds a source of <c>gateway.commit.queue.depth</c> (summed over the live sources) until the returned handle is disposed.</summary>
    public static IDisposable AddQueueSource(object owner, Func<long> depth)
    {
        QueueSources[owner] = depth;
        return new Removal(owner);
    }

    private static long ObserveQueue()
    {
        long total = 0;
        foreach (var source in QueueSources.Values)
        {
            total += source();
        }

        return total;
    }

    private sealed class Removal(object owner) : IDisposable
    {
        public void Dispose() => QueueSources.TryRemove(owner, out _);
    }
}
