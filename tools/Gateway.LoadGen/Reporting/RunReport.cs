using Gateway.LoadGen.Measurement;
using Gateway.LoadGen.Workers;

namespace Gateway.LoadGen.Reporting;

/// <summary>Latency percentiles in milliseconds, plus the percentile spectrum for plotting.</summary>
public sealed record LatencySummary(long Count, double P50, double P90, double P99, double P999, double Max, double Mean, IReadOnlyList<double[]> Spectrum);

/// <summary>One second of a run.</summary>
public sealed record TimelinePoint(double T, double SentPerSec, double DeliveredPerSec, double ConnectsPerSec, double P99Ms, int Active, long Errors);

/// <summary>One rate step of the broadcast scenario.</summary>
public sealed record StepResult(double PublishRate, double OfferedDeliveriesPerSec, double SentPerSec, double DeliveredPerSec, double P50Ms, double P99Ms, double P999Ms, long Errors, bool Sustained,
    double ServerCpuPct = -1, double LoadGenCpuPct = -1)
{
    /// <summary>Server CPU time per delivery in µs (-1 when the server's CPU was not sampled or nothing was delivered).</summary>
    public double ServerCpuUsPerDelivery => ProcStatus.CpuUsPer(ServerCpuPct, DeliveredPerSec);
}

/// <summary>One memory sample of the idle scenario.</summary>
public sealed record MemoryPoint(int Connections, long ServerRssBytes, long LoadGenRssBytes);

/// <summary>Everything one run produced; serialized as the JSON report and rendered as Markdown and SVG.</summary>
public sealed class RunReport
{
    public required string Scenario { get; init; }

    public required string Target { get; init; }

    public string? Label { get; init; }

    public DateTimeOffset StartedAt { get; init; }

    public double DurationSeconds { get; set; }

    public Dictionary<string, string> Parameters { get; init; } = [];

    public Dictionary<string, string> Environment { get; init; } = [];

    /// <summary>Headline numbers (what compare.sh takes medians of), named with their unit.</summary>
    public Dictionary<string, double> Metrics { get; init; } = [];

    public LatencySummary? Latency { get; set; }

    public LatencySummary? ConnectLatency { get; set; }

    public List<TimelinePoint> Timeline { get; init; } = [];

    public List<StepResult> Steps { get; init; } = [];

    public List<MemoryPoint> Memory { get; init; } = [];

    public SeqStats Seq { get; set; } = new();

    public Dictionary<string, long> Errors { get; set; } = [];

    /// <summary><c>pass</c>, <c>fail</c>, or <c>n/a</c> where the scenario has no pass/fail criterion.</summary>
    public string Verdict { get; set; } = "n/a";

    public List<string> Notes { get; init; } = [];
}
