using System.Diagnostics;
using System.Diagnostics.Metrics;
using Gateway.Domain;

namespace Gateway.Nats;

/// <summary>
/// The distributed mode's instruments on meter <c>Gateway</c>: JetStream appends, lost compare-and-sets, gateway → writer
/// requests, and the writer's share of the commit instruments (<see cref="WriteMetrics"/>). Static for the reason given
/// there; labels take only the fixed values named here.
/// </summary>
public static class NatsMetrics
{
    private static readonly Meter Meter = new(WriteMetrics.MeterName);

    private static readonly Histogram<double> AppendDuration = Meter.CreateHistogram(
        "gateway.jetstream.append.duration", "s", "Writer: one JetStream publish with its ack, by result (stored, duplicate, wrong_last_sequence, failed)",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = WriteMetrics.LatencyBuckets });

    private static readonly Counter<long> CasRetries = Meter.CreateCounter<long>(
        "gateway.cas.retries", "{retry}", "Writer: appends retried after losing the chat's compare-and-set (or its event-number claim) to another writer");

    private static readonly Histogram<double> RpcDuration = Meter.CreateHistogram(
        "gateway.rpc.duration", "s", "Gateway: one request to the writers with its retries, by op (send, admin, read) and result (ok, unavailable, timeout)",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = WriteMetrics.LatencyBuckets });

    // Commands of this process's writers waiting for their chat's turn (one append in flight per chat).
    private static long _waiting;

    private static readonly IDisposable QueueSource = WriteMetrics.AddQueueSource(new object(), static () => Interlocked.Read(ref _waiting));

    /// <summary>One append answered (<paramref name="issuedAt"/>: its <see cref="Stopwatch.GetTimestamp"/> when issued): its
    /// duration by result; a stored one is also a commit of one command; a lost race is a CAS retry.</summary>
    public static void RecordAppend(PublishStatus status, long issuedAt)
    {
        var seconds = Stopwatch.GetElapsedTime(issuedAt).TotalSeconds;
        switch (status)
        {
            case PublishStatus.Stored:
                AppendDuration.Record(seconds, new KeyValuePair<string, object?>("result", "stored"));
                WriteMetrics.RecordCommit(seconds, 1);
                break;
            case PublishStatus.Duplicate:
                AppendDuration.Record(seconds, new KeyValuePair<string, object?>("result", "duplicate"));
                CasRetries.Add(1);
                break;
            case PublishStatus.WrongLastSequence:
                AppendDuration.Record(seconds, new KeyValuePair<string, object?>("result", "wrong_last_sequence"));
                CasRetries.Add(1);
                break;
            default:
                AppendDuration.Record(seconds, new KeyValuePair<string, object?>("result", "failed"));
                break;
        }
    }

    /// <summary>Waits for a chat's gate, counted in <c>gateway.commit.queue.depth</c> meanwhile.</summary>
    internal static async Task WaitCountedAsync(SemaphoreSlim gate, CancellationToken cancellationToken)
    {
        GC.KeepAlive(QueueSource);
        cancellationToken.ThrowIfCancellationRequested();
        if (gate.Wait(0))
        {
            return;
        }

        Interlocked.Increment(ref _waiting);
        try
        {
            await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }
    }

    /// <summary>A gateway → writer request ended (<paramref name="startedAt"/>: its first attempt), with its retries.</summary>
    /// <param name="subject">One of <see cref="Subjects.RpcSend"/>, <see cref="Subjects.RpcAdmin"/>, <see cref="Subjects.RpcRead"/>.</param>
    /// <param name="result">ok, unavailable or timeout.</param>
    /// <param name="startedAt">The <see cref="Stopwatch.GetTimestamp"/> of the first attempt.</param>
    internal static void RecordRpc(string subject, string result, long startedAt)
    {
        var op = subject switch
        {
            Subjects.RpcSend => "send",
            Subjects.RpcAdmin => "admin",
            _ => "read",
        };
        RpcDuration.Record(Stopwatch.GetElapsedTime(startedAt).TotalSeconds, new KeyValuePair<string, object?>("op", op), new KeyValuePair<string, object?>("result", result));
    }
}
