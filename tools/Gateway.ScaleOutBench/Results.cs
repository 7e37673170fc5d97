using HdrHistogram;

namespace Gateway.ScaleOutBench;

/// <summary>Percentiles of one latency histogram, in milliseconds.</summary>
internal sealed record Percentiles(double P50, double P99, double P999, double Max, long Count)
{
    /// <summary>Histogram values are microseconds; 0 everywhere when empty.</summary>
    public static Percentiles Of(HistogramBase h) => h.TotalCount == 0
        ? new(0, 0, 0, 0, 0)
        : new(h.GetValueAtPercentile(50) / 1000.0, h.GetValueAtPercentile(99) / 1000.0, h.GetValueAtPercentile(99.9) / 1000.0,
            h.GetMaxValue() / 1000.0, h.TotalCount);
}

/// <summary>Open-loop latency test: delivery (intended send → receive on the other gateway), the same from the actual
/// send (without the bench timer's lateness), ack (intended send → SendAck on the sender), and the bench's own
/// scheduling lag (intended → actual send).</summary>
internal sealed record LatencyResult(Percentiles Delivery, Percentiles DeliveryFromSend, Percentiles Ack, Percentiles Lag, long Sent, long Received, long Anomalies, long Errors);

/// <summary>Closed-loop throughput test: acknowledged sends per second over the measured window, the slowest whole
/// second in it, and the ack latency under that load.</summary>
internal sealed record ThroughputResult(double AcksPerSecond, double SlowestSecond, Percentiles Ack, long Errors);

/// <summary>The distributed path's parts, measured from the bench process against the same nats-server: a core
/// request/reply round trip, a JetStream append with the writer's headers (CAS + dedup id), and publish → republished
/// copy received.</summary>
internal sealed record ProbeResult(Percentiles CoreRequest, Percentiles JetStreamAppend, Percentiles AppendToRepublish);

/// <summary>Everything one run of one setup measured.</summary>
internal sealed record RunResult(string Setup, int Run, LatencyResult Latency, ThroughputResult OneChat, ThroughputResult ManyChats, ProbeResult? Probe);
