using System.Diagnostics;
using Gateway.Protocol;
using static Gateway.Client.Tests.TestHelpers;

namespace Gateway.Client.Tests;

/// <summary>A send carries the caller's W3C trace context (Send's optional elements 7 and 8).</summary>
public sealed class TracingTests
{
    [Fact]
    public async Task A_send_carries_the_current_activitys_context_on_every_write()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server, o => o.RequestTimeout = TimeSpan.FromMilliseconds(700));
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();

        using var activity = new Activity("app.send").SetIdFormat(ActivityIdFormat.W3C).Start();
        activity.TraceStateString = "vendor=x";
        var sending = client.SendTextAsync("c1", "hi");
        activity.Stop(); // the context is taken at the call: what the caller does later does not matter

        var first = await conn.ReceiveAsync(FrameType.Send);
        Assert.Equal(TraceContext.Format(activity.Context), first.TraceParent);
        Assert.Equal("vendor=x", first.TraceState);

        // No answer: the request timeout writes the send again, with the same context.
        var again = await conn.ReceiveAsync(FrameType.Send);
        Assert.Equal(first.ClientMessageId, again.ClientMessageId);
        Assert.Equal(first.TraceParent, again.TraceParent);
        await conn.SendAsync(new SendAckFrame(again.RequestId, "c1", 1, "m1", 0, Duplicate: false));
        await sending.WaitAsync(TestTimeout);
    }

    [Fact]
    public async Task With_propagation_off_a_send_has_no_trace_context_with_or_without_an_activity()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server, o => o.PropagateTraceContext = false);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();

        Assert.Null(Activity.Current);
        var plain = client.SendTextAsync("c1", "one");
        var frame = await conn.ReceiveAsync(FrameType.Send);
        Assert.Null(frame.TraceParent);
        await conn.SendAsync(new SendAckFrame(frame.RequestId, "c1", 1, "m1", 0, Duplicate: false));
        await plain.WaitAsync(TestTimeout);

        using var activity = new Activity("app.send").SetIdFormat(ActivityIdFormat.W3C).Start();
        var off = client.SendTextAsync("c1", "two");
        frame = await conn.ReceiveAsync(FrameType.Send);
        Assert.Null(frame.TraceParent);
        Assert.Null(frame.TraceState);
        await conn.SendAsync(new SendAckFrame(frame.RequestId, "c1", 2, "m2", 0, Duplicate: false));
        await off.WaitAsync(TestTimeout);
    }
}
