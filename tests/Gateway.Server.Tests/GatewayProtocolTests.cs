using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Gateway.Protocol;

namespace Gateway.Server.Tests;

/// <summary>Bad input against the real gateway: each gets its documented answer and the process keeps serving.</summary>
public sealed class GatewayProtocolTests
{
    private static async Task<string> RawHandshakeAsync(Uri ws, string request)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(ws.Host, ws.Port).WaitAsync(TimeSpan.FromSeconds(10));
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        var buffer = new byte[4096];
        var read = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        return Encoding.ASCII.GetString(buffer, 0, read);
    }

    private static string Upgrade(Uri ws, string path, string? extraHeaders, string protocol = ProtocolConstants.SubProtocol, string version = "13") =>
        $"GET {path} HTTP/1.1\r\nHost: {ws.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        $"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: {version}\r\n" +
        $"Sec-WebSocket-Protocol: {protocol}\r\n{extraHeaders}\r\n";

    [Fact]
    public async Task Handshake_errors_have_clear_statuses()
    {
        await using var gw = await TestGateway.StartAsync();
        var ws = gw.WebSocketUri;
        var auth = $"Authorization: Bearer {gw.Token("alice")}\r\n";

        Assert.StartsWith("HTTP/1.1 401", await RawHandshakeAsync(ws, Upgrade(ws, ws.AbsolutePath, null)));
        Assert.StartsWith("HTTP/1.1 401", await RawHandshakeAsync(ws, Upgrade(ws, ws.AbsolutePath, "Authorization: Bearer not.a.jwt\r\n")));
        Assert.StartsWith("HTTP/1.1 401", await RawHandshakeAsync(ws, Upgrade(ws, ws.AbsolutePath,
            $"Authorization: Bearer {gw.Token("alice", lifetime: TimeSpan.FromMinutes(-5))}\r\n")));
        Assert.StartsWith("HTTP/1.1 404", await RawHandshakeAsync(ws, Upgrade(ws, "/elsewhere", auth)));
        Assert.StartsWith("HTTP/1.1 400", await RawHandshakeAsync(ws, Upgrade(ws, ws.AbsolutePath, auth, protocol: "chat.v0")));
        var badVersion = await RawHandshakeAsync(ws, Upgrade(ws, ws.AbsolutePath, auth, version: "8"));
        Assert.StartsWith("HTTP/1.1 426", badVersion);
        Assert.Contains("Sec-WebSocket-Version: 13", badVersion, StringComparison.OrdinalIgnoreCase);

        var ok = await RawHandshakeAsync(ws, Upgrade(ws, ws.AbsolutePath, auth));
        Assert.StartsWith("HTTP/1.1 101", ok);
        Assert.Contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", ok, StringComparison.Ordinal);
        Assert.Contains($"Sec-WebSocket-Protocol: {ProtocolConstants.SubProtocol}", ok, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Browser_token_paths_work_and_the_token_is_not_echoed()
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateChatAsync("general", "alice");

        // A browser cannot set headers: the token rides as a second subprotocol entry...
        using (var viaProtocol = new ClientWebSocket())
        {
            viaProtocol.Options.AddSubProtocol(ProtocolConstants.SubProtocol);
            viaProtocol.Options.AddSubProtocol(ProtocolConstants.TokenSubProtocolPrefix + gw.Token("alice"));
            await viaProtocol.ConnectAsync(gw.WebSocketUri, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(ProtocolConstants.SubProtocol, viaProtocol.SubProtocol);
        }

        // ...or in the query string.
        using var viaQuery = new ClientWebSocket();
        viaQuery.Options.AddSubProtocol(ProtocolConstants.SubProtocol);
        await viaQuery.ConnectAsync(new Uri(gw.WebSocketUri + "?access_token=" + gw.Token("alice")), CancellationToken.None)
            .WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(WebSocketState.Open, viaQuery.State);
    }

    [Fact]
    public async Task Text_frame_closes_1003_and_others_are_unaffected()
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateChatAsync("general", "alice", "bob");
        await using var bystander = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("bob"));
        await bystander.SubscribeAsync(new ChatCursor("general", 0));
        await bystander.ReceiveAsync<SubscribedFrame>();
        await bystander.ReceiveAsync<CaughtUpFrame>();

        await using var bad = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
        await bad.Socket.SendAsync("hello"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Equal(WebSocketCloseStatus.InvalidMessageType, await bad.ReceiveCloseAsync());

        await using var alice = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
        await alice.SendTextAsync("general", "still serving");
        Assert.Equal(1UL, (await bystander.ReceiveAsync<MessageFrame>()).Message.Seq);
    }

    [Fact]
    public async Task Payload_that_is_not_a_frame_closes_1007()
    {
        await using var gw = await TestGateway.StartAsync();
        await using var client = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
        await client.Socket.SendAsync(new byte[] { 0xc1, 0x00, 0x01 }, WebSocketMessageType.Binary, true, CancellationToken.None);
        Assert.Equal(WebSocketCloseStatus.InvalidPayloadData, await client.ReceiveCloseAsync());
    }

    [Fact]
    public async Task Unknown_frame_type_with_a_byte_after_the_array_closes_1007()
    {
        await using var gw = await TestGateway.StartAsync();
        await using var client = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));

        // [17, 5] and then 0x00: bytes after the array make the payload malformed, whatever the tag (PROTOCOL.md §3).
        await client.Socket.SendAsync(new byte[] { 0x92, 0x11, 0x05, 0x00 }, WebSocketMessageType.Binary, true, CancellationToken.None);
        Assert.Equal(WebSocketCloseStatus.InvalidPayloadData, await client.ReceiveCloseAsync());
    }

    [Fact]
    public async Task Unknown_frame_type_and_invalid_fields_get_errors_and_the_connection_stays()
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateChatAsync("general", "alice");
        await using var client = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));

        // [17, 5] — a type this server does not know.
        await client.Socket.SendAsync(new byte[] { 0x92, 0x11, 0x05 }, WebSocketMessageType.Binary, true, CancellationToken.None);
        var unknown = await client.ReceiveAsync<ErrorFrame>();
        Assert.Equal((5u, ErrorCode.UnknownFrameType), (unknown.RequestId, unknown.Code));

        // [3, 6, 42] — a Send with a number where the chat id goes.
        await client.Socket.SendAsync(new byte[] { 0x93, 0x03, 0x06, 0x2a }, WebSocketMessageType.Binary, true, CancellationToken.None);
        var invalid = await client.ReceiveAsync<ErrorFrame>();
        Assert.Equal((6u, ErrorCode.InvalidFrame), (invalid.RequestId, invalid.Code));

        // Field limits: a chat id with a dot, content over the limit.
        await client.SendTextAsync("bad.chat", "x");
        Assert.Equal(ErrorCode.ValidationFailed, (await client.ReceiveAsync<ErrorFrame>()).Code);
        var id = client.NextRequestId();
        await client.SendFrameAsync(w => ClientFrameWriter.WriteSend(w, id, "general", "big", "text/plain", new byte[ProtocolConstants.DefaultMaxContentBytes + 1], null));
        var tooBig = await client.ReceiveAsync<ErrorFrame>();
        Assert.Equal((id, ErrorCode.ValidationFailed), (tooBig.RequestId, tooBig.Code));

        await client.SendTextAsync("general", "fine");
        Assert.Equal(1UL, (await client.ReceiveAsync<SendAckFrame>()).Seq);
    }

    [Fact]
    public async Task Message_over_the_limit_closes_1009()
    {
        await using var gw = await TestGateway.StartAsync();
        await using var client = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
        await client.Socket.SendAsync(new byte[ProtocolConstants.DefaultMaxMessageBytes + 1], WebSocketMessageType.Binary, true, CancellationToken.None);
        Assert.Equal(WebSocketCloseStatus.MessageTooBig, await client.ReceiveCloseAsync());
    }

    [Fact]
    public async Task Http_api_health_admin_auth_and_bff_send()
    {
        await using var gw = await TestGateway.StartAsync();
        Assert.Equal("ok", await gw.Http.GetStringAsync("/healthz"));

        using var noAdmin = await gw.Http.PostAsync("/v1/admin/tenants/t1/chats",
            System.Net.Http.Json.JsonContent.Create(new { chatId = "x", members = new[] { "a" } }));
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, noAdmin.StatusCode);

        await gw.CreateChatAsync("general", "alice", "bob");
        await using var bob = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("bob"));
        await bob.SubscribeAsync(new ChatCursor("general", 0));
        await bob.ReceiveAsync<SubscribedFrame>();
        await bob.ReceiveAsync<CaughtUpFrame>();

        async Task<HttpResponseMessage> PostAsync(string key)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chats/general/messages")
            {
                Content = System.Net.Http.Json.JsonContent.Create(new { contentType = "text/plain", text = "from the backend" }),
            };
            request.Headers.Authorization = new("Bearer", gw.Token("alice"));
            request.Headers.Add("Idempotency-Key", key);
            return await gw.Http.SendAsync(request);
        }

        using var created = await PostAsync("bff-1");
        Assert.Equal(System.Net.HttpStatusCode.Created, created.StatusCode);
        using var duplicate = await PostAsync("bff-1");
        Assert.Equal(System.Net.HttpStatusCode.OK, duplicate.StatusCode);
        Assert.Contains("\"duplicate\":true", await duplicate.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        var live = await bob.ReceiveAsync<MessageFrame>();
        Assert.Equal(("alice", 1UL, "from the backend"), (live.Message.SenderId, live.Message.Seq, Encoding.UTF8.GetString(live.Message.Content.Span)));
    }
}

/// <summary>Heartbeats: pings when idle, and a peer that answers nothing is closed.</summary>
public sealed class HeartbeatTests
{
    [Fact]
    public async Task Silent_connection_is_pinged_then_closed_while_a_live_one_stays()
    {
        await using var gw = await TestGateway.StartAsync(null, "--Gateway:HeartbeatSeconds=1", "--Gateway:IdleTimeoutSeconds=3");

        // ClientWebSocket answers pings by itself: it must survive the same silence.
        // (ManagedWebSocket answers pings only while a receive is pending, so one is kept pending throughout.)
        await gw.CreateChatAsync("general", "bob");
        await using var live = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("bob"));
        var pending = live.ReceiveAsync(TimeSpan.FromSeconds(60));

        var endPoint = System.Net.IPEndPoint.Parse(gw.WebSocketUri.Authority);
        await using var silent = await Gateway.TestUtilities.RawWebSocketClient.ConnectAsync(endPoint);
        await silent.SendRawAsync(Encoding.ASCII.GetBytes(Gateway.TestUtilities.RawWebSocketClient.BuildUpgradeRequest(
            gw.WebSocketUri.AbsolutePath, ProtocolConstants.SubProtocol, extraHeaders: $"Authorization: Bearer {gw.Token("alice")}")));
        Assert.Equal(101, (await silent.ReadHttpResponseAsync()).StatusCode);

        // Hello, then pings it never answers, then a close with 1001.
        var frames = new List<byte>();
        while (true)
        {
            var frame = await silent.ReadFrameAsync(TimeSpan.FromSeconds(15));
            frames.Add(frame.Opcode);
            if (frame.Opcode == Gateway.TestUtilities.RawWebSocketClient.OpClose)
            {
                Assert.Equal((ushort)1001, frame.CloseCode);
                break;
            }
        }

        Assert.Equal(Gateway.TestUtilities.RawWebSocketClient.OpBinary, frames[0]);
        Assert.Contains(Gateway.TestUtilities.RawWebSocketClient.OpPing, frames);

        // The connection that answered its pings is still served.
        Assert.Equal(System.Net.WebSockets.WebSocketState.Open, live.Socket.State);
        await live.SendTextAsync("general", "still here");
        Assert.Equal(1UL, Assert.IsType<SendAckFrame>(await pending).Seq);
    }
}

/// <summary>Stopping the host closes every WebSocket with 1001 (reconnect elsewhere) instead of hanging.</summary>
public sealed class ShutdownTests
{
    [Fact]
    public async Task Stopping_the_host_closes_sessions_with_1001()
    {
        var gw = await TestGateway.StartAsync();
        await using var client = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
        var closed = client.ReceiveCloseAsync(TimeSpan.FromSeconds(20));
        var stopping = gw.DisposeAsync().AsTask();
        Assert.Equal(System.Net.WebSockets.WebSocketCloseStatus.EndpointUnavailable, await closed);
        await stopping.WaitAsync(TimeSpan.FromSeconds(20));
    }
}
