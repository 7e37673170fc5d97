using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Gateway.Domain;
using Gateway.Protocol;

namespace Gateway.Server.Tests;

/// <summary>
/// Embedded mode traces: a send's span, the commit that made it durable and the fanout that delivered it share the
/// client's trace. The listener is process-wide (other tests' spans show up too), so every test uses its own chat and
/// trace ids and looks only at those.
/// </summary>
public sealed class TracingTests
{

    [Fact]
    public async Task A_WebSocket_send_with_a_traceparent_is_committed_and_fanned_out_in_the_clients_trace()
    {
        using var spans = new SpanRecorder();
        await using var gateway = await TestGateway.StartAsync();
        var chat = "tr-" + Guid.NewGuid().ToString("N")[..12];
        await gateway.CreateChatAsync(chat, "alice", "bob");
        await using var alice = await WsClient.ConnectAsync(gateway.WebSocketUri, gateway.Token("alice"));
        await using var bob = await WsClient.ConnectAsync(gateway.WebSocketUri, gateway.Token("bob"));
        await SubscribeLiveAsync(bob, chat);

        var client = new ActivityContext(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.Recorded);
        var id = alice.NextRequestId();
        await alice.SendFrameAsync(w => ClientFrameWriter.WriteSend(w, id, chat, "k1", "text/plain", "hi"u8, null, TraceContext.Format(client), "vendor=x"));
        Assert.Equal(1UL, (await alice.ReceiveMatchingAsync<SendAckFrame>(f => f.RequestId == id)).Seq);
        Assert.Equal(1UL, (await bob.ReceiveMatchingAsync<MessageFrame>(f => f.ChatId == chat)).Message.Seq);

        var send = await spans.WaitForAsync(s => s.DisplayName == GatewayTracing.Send && s.TraceId == client.TraceId);
        var commit = await spans.WaitForAsync(s => s.DisplayName == GatewayTracing.Commit && s.TraceId == client.TraceId);
        var fanout = await spans.WaitForAsync(s => s.DisplayName == GatewayTracing.Fanout && s.TraceId == client.TraceId);

        Assert.Equal(ActivityKind.Server, send.Kind);
        Assert.Equal(client.SpanId, send.ParentSpanId);
        Assert.Equal("ws", send.GetTagItem(GatewayTracing.TransportTag));
        Assert.Equal("vendor=x", send.TraceStateString);
        Assert.Equal(1UL, send.GetTagItem(GatewayTracing.SeqTag));

        Assert.Equal(send.SpanId, commit.ParentSpanId);
        Assert.Contains(commit.Links, l => l.Context.SpanId == send.SpanId);

        Assert.Equal(ActivityKind.Consumer, fanout.Kind);
        Assert.Equal(send.SpanId, fanout.ParentSpanId);
        Assert.Equal(chat, fanout.GetTagItem(GatewayTracing.ChatTag));
        Assert.Equal(1, fanout.GetTagItem(GatewayTracing.SubscribersTag));
    }

    [Fact]
    public async Task An_invalid_traceparent_is_ignored_and_the_send_still_succeeds()
    {
        using var spans = new SpanRecorder();
        await using var gateway = await TestGateway.StartAsync();
        var chat = "tr-" + Guid.NewGuid().ToString("N")[..12];
        await gateway.CreateChatAsync(chat, "alice");
        await using var alice = await WsClient.ConnectAsync(gateway.WebSocketUri, gateway.Token("alice"));

        var traceId = ActivityTraceId.CreateRandom();
        var invalid = $"00-{traceId.ToHexString().ToUpperInvariant()}-00F067AA0BA902B7-01";
        var id = alice.NextRequestId();
        await alice.SendFrameAsync(w => ClientFrameWriter.WriteSend(w, id, chat, "k1", "text/plain", "hi"u8, null, invalid, null));
        Assert.Equal(1UL, (await alice.ReceiveMatchingAsync<SendAckFrame>(f => f.RequestId == id)).Seq);

        // The span is a new trace of its own: nothing continued the refused context.
        var send = await spans.WaitForAsync(s => s.DisplayName == GatewayTracing.Send && chat.Equals(s.GetTagItem(GatewayTracing.ChatTag)));
        Assert.NotEqual(traceId, send.TraceId);
        Assert.Equal(default, send.ParentSpanId);
        Assert.DoesNotContain(spans.All, s => s.TraceId == traceId);
    }

    [Fact]
    public async Task An_HTTP_send_continues_the_traceparent_header()
    {
        using var spans = new SpanRecorder();
        await using var gateway = await TestGateway.StartAsync();
        var chat = "tr-" + Guid.NewGuid().ToString("N")[..12];
        await gateway.CreateChatAsync(chat, "alice");

        var client = new ActivityContext(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.Recorded);
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/chats/{chat}/messages")
        {
            Content = JsonContent.Create(new { contentType = "text/plain", text = "hi" }),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", gateway.Token("alice"));
        request.Headers.Add("Idempotency-Key", "h1");
        request.Headers.Add("traceparent", TraceContext.Format(client));
        using var response = await gateway.Http.SendAsync(request);
        Assert.Equal(System.Net.HttpStatusCode.Created, response.StatusCode);

        var send = await spans.WaitForAsync(s => s.DisplayName == GatewayTracing.Send && s.TraceId == client.TraceId);
        Assert.Equal("http", send.GetTagItem(GatewayTracing.TransportTag));
        Assert.Equal(client.SpanId, send.ParentSpanId);
        var commit = await spans.WaitForAsync(s => s.DisplayName == GatewayTracing.Commit && s.TraceId == client.TraceId);
        Assert.Equal(send.SpanId, commit.ParentSpanId);
    }

    private static async Task SubscribeLiveAsync(WsClient client, string chat)
    {
        await client.SubscribeAsync(new ChatCursor(chat, 0));
        await client.ReceiveMatchingAsync<CaughtUpFrame>(f => f.ChatId == chat);
    }

}
