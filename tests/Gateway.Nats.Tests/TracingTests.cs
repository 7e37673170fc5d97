using System.Diagnostics;
using Gateway.Domain;
using Gateway.Protocol;

namespace Gateway.Nats.Tests;

/// <summary>
/// Distributed mode traces, with every role hosted in this process over a real nats-server: one trace id spans the
/// send on gateway A, the writer's RPC handling and JetStream append, the writer's projection, and the fanout on both
/// gateways, gateway B's continuing from the append's context that JetStream stored and republished in headers.
/// </summary>
public sealed class TracingTests
{

    [Fact]
    public async Task One_trace_spans_gateway_A_the_writer_and_gateway_B()
    {
        using var spans = new SpanRecorder();
        await using var deployment = await TwoGateways.StartAsync();
        var chat = "tr-" + Guid.NewGuid().ToString("N")[..12];
        await deployment.GatewayA.CreateChatAsync(chat, "alice", "bob", "carol");

        // Alice on A, Bob and Carol on B: A fans the event out to one subscription, B to two, so the spans say which is which.
        await using var alice = await WsClient.ConnectAsync(deployment.GatewayA.WebSocketUri, RoleHost.Token("alice"));
        await using var bob = await WsClient.ConnectAsync(deployment.GatewayB.WebSocketUri, RoleHost.Token("bob"));
        await using var carol = await WsClient.ConnectAsync(deployment.GatewayB.WebSocketUri, RoleHost.Token("carol"));
        foreach (var c in new[] { alice, bob, carol })
        {
            await c.SubscribeAsync(new ChatCursor(chat, 0));
            await c.ReceiveMatchingAsync<CaughtUpFrame>(f => f.ChatId == chat);
        }

        var client = new ActivityContext(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.Recorded);
        var id = alice.NextRequestId();
        await alice.SendFrameAsync(w => ClientFrameWriter.WriteSend(w, id, chat, "k1", "text/plain", "hi"u8, null, TraceContext.Format(client), "vendor=x"));
        Assert.Equal(1UL, (await alice.ReceiveMatchingAsync<SendAckFrame>(f => f.RequestId == id)).Seq);
        Assert.Equal(1UL, (await bob.ReceiveMatchingAsync<MessageFrame>(f => f.ChatId == chat)).Message.Seq);
        Assert.Equal(1UL, (await carol.ReceiveMatchingAsync<MessageFrame>(f => f.ChatId == chat)).Message.Seq);

        bool InTrace(Activity s) => s.TraceId == client.TraceId;

        // Gateway A: the send, then the request to a writer.
        var send = await spans.WaitForAsync(s => InTrace(s) && s.DisplayName == GatewayTracing.Send);
        Assert.Equal(client.SpanId, send.ParentSpanId);
        Assert.Equal("ws", send.GetTagItem(GatewayTracing.TransportTag));
        var rpcClient = await spans.WaitForAsync(s => InTrace(s) && s.DisplayName == GatewayTracing.RpcSend && s.Kind == ActivityKind.Client);
        Assert.Equal(send.SpanId, rpcClient.ParentSpanId);

        // The writer: its handling of the request (from the request's headers), the append, the projection.
        var rpcServer = await spans.WaitForAsync(s => InTrace(s) && s.DisplayName == GatewayTracing.RpcSend && s.Kind == ActivityKind.Server);
        Assert.Equal(rpcClient.SpanId, rpcServer.ParentSpanId);
        Assert.Equal("vendor=x", rpcServer.TraceStateString);
        var append = await spans.WaitForAsync(s => InTrace(s) && s.DisplayName == GatewayTracing.Append);
        Assert.Equal(ActivityKind.Producer, append.Kind);
        Assert.Equal(rpcServer.SpanId, append.ParentSpanId);
        Assert.Equal(nameof(PublishStatus.Stored), append.GetTagItem("chatgw.append.outcome"));
        var project = await spans.WaitForAsync(s => InTrace(s) && s.DisplayName == GatewayTracing.Project);
        Assert.Contains(project.Links, l => l.Context.SpanId == append.SpanId);

        // Both gateways: each fanout continues from the append's span, whose context only the log entry's headers
        // carry (the payload names the writer's server span), so it came through JetStream's republish.
        var atA = await spans.WaitForAsync(s => InTrace(s) && s.DisplayName == GatewayTracing.Fanout && Equals(s.GetTagItem(GatewayTracing.SubscribersTag), 1));
        var atB = await spans.WaitForAsync(s => InTrace(s) && s.DisplayName == GatewayTracing.Fanout && Equals(s.GetTagItem(GatewayTracing.SubscribersTag), 2));
        Assert.Equal(append.SpanId, atA.ParentSpanId);
        Assert.Equal(append.SpanId, atB.ParentSpanId);
        Assert.Equal(ActivityKind.Consumer, atB.Kind);
        Assert.Equal(2, spans.All.Count(s => InTrace(s) && s.DisplayName == GatewayTracing.Fanout));
    }
}
