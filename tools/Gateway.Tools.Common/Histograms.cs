using System.Diagnostics;
using HdrHistogram;
using HdrHistogram.Utilities;

namespace Gateway.Tools.Common;

/// <summary>Latency histograms in microseconds (1 µs … 60 s, 3 significant digits: 0.1 % resolution), and their wire
/// form between LoadGen's workers and coordinator.</summary>
public static class Histograms
{
    /// <summary>60 s in µs: anything slower is clamped (and is a failed run anyway).</summary>
    public const long MaxMicros = 60_000_000;

    /// <summary>Stopwatch ticks per microsecond, for converting timestamp differences.</summary>
    public static readonly double TicksPerMicro = Stopwatch.Frequency / 1e6;

    /// <summary>A thread-safe interval recorder: 1 µs … 60 s, 3 significant digits (0.1 % resolution).</summary>
    public static Recorder NewRecorder() =>
        new(1, MaxMicros, 3, static (id, low, high, digits) => new LongConcurrentHistogram(id, low, high, digits));

    /// <summary>An empty histogram with the same range, for merging.</summary>
    public static LongHistogram NewHistogram() => new(1, MaxMicros, 3);

    /// <summary>A histogram with the same range that several threads may record into.</summary>
    public static LongConcurrentHistogram NewConcurrent() => new(1, MaxMicros, 3);

    /// <summary>Stopwatch ticks in <paramref name="seconds"/>.</summary>
    public static long Ticks(double seconds) => (long)(seconds * Stopwatch.Frequency);

    /// <summary>Records <paramref name="to"/> − <paramref name="from"/> (Stopwatch timestamps) in µs (clamped to the range).</summary>
    public static void Record(HistogramBase histogram, long from, long to)
    {
        histogram.RecordValue(Micros(from, to));
    }

    /// <summary>Records the time from <paramref name="fromTimestamp"/> to now, in µs (clamped to the range).</summary>
    public static void RecordSince(Recorder recorder, long fromTimestamp, long now)
    {
        recorder.RecordValue(Micros(fromTimestamp, now));
    }

    /// <summary>Compressed HdrHistogram V2 encoding, base64: what a worker puts in a JSON line.</summary>
    public static string Encode(HistogramBase histogram)
    {
        ArgumentNullException.ThrowIfNull(histogram);
        var buffer = ByteBuffer.Allocate(histogram.GetNeededByteBufferCapacity());
        var length = histogram.EncodeIntoCompressedByteBuffer(buffer);

        // ByteBuffer exposes its array only through Get(): read the encoded bytes back from the start.
        buffer.Position = 0;
        var bytes = new byte[length];
        for (var i = 0; i < length; i++)
        {
            bytes[i] = buffer.Get();
        }

        return Convert.ToBase64String(bytes);
    }

    /// <summary>Inverse of <see cref="Encode"/>.</summary>
    public static HistogramBase Decode(string base64)
    {
        var bytes = Convert.FromBase64String(base64);
        return HistogramEncoding.DecodeFromCompressedByteBuffer(ByteBuffer.Allocate(bytes), 0);
    }

    /// <summary>Value at a percentile in milliseconds (0 when empty).</summary>
    public static double Ms(HistogramBase h, double percentile) =>
        h.TotalCount == 0 ? 0 : h.GetValueAtPercentile(percentile) / 1000.0;

    private static long Micros(long from, long to) => Math.Clamp((long)((to - from) / TicksPerMicro), 1, MaxMicros);
}
