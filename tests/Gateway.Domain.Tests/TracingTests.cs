using System.Collections.Concurrent;
using System.Diagnostics;
using Gateway.Protocol;
using static Gateway.Domain.Tests.ServiceHarness;

namespace Gateway.Domain.Tests;

/// <summary>The embedded commit span: one per synced batch, in the trace of its first traced send, linked to all of them.</summary>
public sealed class TracingTests
{
    [Fact]
    public async Task A_batch_commit_span_is_the_child_of_its_first_traced_send_and_links_every_traced_send()
    {
        var stopped = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == GatewayTracing.SourceName,
            Sample = static (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);

        await using var h = Start();
        await h.CreateChatAsync("c", "alice");

        // The first send holds the commit thread in its append, so the next five queue up and commit as one batch.
        var held = h.Faults.HoldNextAppend();
        var first = h.Service.SendAsync(Text("c", "alice", "k0", traceId: TraceContext.Format(NewContext()))).AsTask();
        await held.Within();

        var traced = new[] { NewContext(), NewContext(), NewContext() };
        var batch = new[]
        {
            h.Service.SendAsync(Text("c", "alice", "k1")).AsTask(),
            h.Service.SendAsync(Text("c", "alice", "k2", traceId: TraceContext.Format(traced[0]))).AsTask(),
            h.Service.SendAsync(Text("c", "alice", "k3", traceId: "not a traceparent")).AsTask(),
            h.Service.SendAsync(Text("c", "alice", "k4", traceId: TraceContext.Format(traced[1]))).AsTask(),
            h.Service.SendAsync(Text("c", "alice", "k5", traceId: TraceContext.Format(traced[2]))).AsTask(),
        };
        h.Faults.Release();
        Assert.True((await first.Within()).IsSuccess);
        foreach (var send in batch)
        {
            Assert.True((await send.Within()).IsSuccess);
        }

        Assert.Equal([1, 5], h.Faults.AppendBatchSizes.TakeLast(2));
        var commit = Assert.Single(stopped, s => s.DisplayName == GatewayTracing.Commit && s.TraceId == traced[0].TraceId);
        Assert.Equal(traced[0].SpanId, commit.ParentSpanId);
        Assert.Equal(traced.Select(c => c.SpanId), commit.Links.Select(l => l.Context.SpanId));
        Assert.Equal(5, commit.GetTagItem(GatewayTracing.BatchSizeTag));
        Assert.DoesNotContain(stopped, s => s.DisplayName == GatewayTracing.Commit && (s.TraceId == traced[1].TraceId || s.TraceId == traced[2].TraceId));
    }

    private static ActivityContext NewContext() => new(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.Recorded);
}
