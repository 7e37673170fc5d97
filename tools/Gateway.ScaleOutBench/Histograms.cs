using System.Diagnostics;
using HdrHistogram;

namespace Gateway.ScaleOutBench;

/// <summary>Latency histograms in microseconds: 1 µs … 60 s, 3 significant digits (0.1 % resolution).</summary>
internal static class Histograms
{
    /// <summary>60 s in µs: anything slower is clamped (and the run is broken anyway).</summary>
    private const long MaxMicros = 60_000_000;

    private static readonly double TicksPerMicro = Stopwatch.Frequency / 1e6;

    /// <summary>A histogram that several threads may record into.</summary>
    public static LongConcurrentHistogram New() => new(1, MaxMicros, 3);

    /// <summary>Records <paramref name="to"/> − <paramref name="from"/> (Stopwatch timestamps) in µs.</summary>
    public static void Record(HistogramBase h, long from, long to) =>
        h.RecordValue(Math.Clamp((long)((to - from) / TicksPerMicro), 1, MaxMicros));

    /// <summary>Stopwatch ticks in <paramref name="seconds"/>.</summary>
    public static long Ticks(double seconds) => (long)(seconds * Stopwatch.Frequency);
}
