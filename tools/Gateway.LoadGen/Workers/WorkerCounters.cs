using System.Collections.Concurrent;
using Gateway.LoadGen.Measurement;
using Gateway.Tools.Common;
using HdrHistogram;

namespace Gateway.LoadGen.Workers;

/// <summary>Counters shared by every client of a worker; read and reset once a second by the tick.</summary>
internal sealed class WorkerCounters
{
    public long Sent;
    public long Delivered;
    public long Connects;
    public long ConnectFailures;
    public long Reconnects;
    public long SeqAnomalies;

    public Recorder Latency { get; } = Histograms.NewRecorder();

    public Recorder ConnectLatency { get; } = Histograms.NewRecorder();

    public ConcurrentDictionary<string, long> Errors { get; } = new(StringComparer.Ordinal);

    public void Error(string code) => Errors.AddOrUpdate(code, 1, static (_, n) => n + 1);

    public void Seq(SeqObservation observation)
    {
        if (observation != SeqObservation.InOrder)
        {
            Interlocked.Increment(ref SeqAnomalies);
        }
    }

    /// <summary>Takes this interval's errors, leaving zeroes behind.</summary>
    public Dictionary<string, long>? TakeErrors()
    {
        Dictionary<string, long>? taken = null;
        foreach (var key in Errors.Keys)
        {
            if (Errors.TryRemove(key, out var n) && n > 0)
            {
                taken ??= new(StringComparer.Ordinal);
                taken[key] = n;
            }
        }

        return taken;
    }
}
