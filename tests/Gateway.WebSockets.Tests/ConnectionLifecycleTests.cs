using System.Net.WebSockets;
using Xunit;
using C = Gateway.TestUtilities.RawWebSocketClient;

namespace Gateway.WebSockets.Tests;

/// <summary>Server-side view of a connection's life over real sockets: closes, timeouts, faults, keep-alive, interop.</summary>
public class ConnectionLifecycleTests
{
    private static WebSocketOptions Options(double closeTimeoutSeconds = 5, double keepAliveSeconds = 0, int maxMessageBytes = 64 * 1024) => new()
    {
        CloseTimeout = TimeSpan.FromSeconds(closeTimeoutSeconds),
        KeepAliveInterval = TimeSpan.FromSeconds(keepAliveSeconds),
        MaxMessageBytes = maxMessageBytes,
    };

    [Fact]
    public async Task Server_close_sends_close_after_queued_frames_and_waits_for_the_echo()
    {
        await using var server = await WsTestServer.StartAsync(Options());
        await using var client = await C.ConnectAndUpgradeAsync(server.EndPoint);
        var connection = await server.State.WaitForConnectionAsync();

        var frame = OutboundFrame.Rent(4);
        "news"u8.CopyTo(frame.GetSpan(4));
        frame.Advance(4);
        frame.Seal();
        Assert.True(connection.TryEnqueue(frame));
        connection.Close(4000, "going");
        connection.Close(1000, "second close is ignored");
        Assert.True(connection.Closing.IsCancellationRequested);
        Assert.False(connection.TryEnqueue(frame));
        frame.Release();

        Assert.Equal("news"u8.ToArray(), (await client.ReadFrameAsync()).Payload);
        var close = await client.ReadFrameAsync();
        Assert.Equal((ushort)4000, close.CloseCode);
        Assert.Equal("going", close.CloseReason);

        // Not over until the peer answers.
        Assert.False(server.State.WaitForEndAsync(connection).IsCompleted);
        await client.SendFrameAsync(C.OpClose, C.ClosePayload(4000));
        Assert.True(await client.ReadUntilEofAsync());
        Assert.Null(await server.State.WaitForEndAsync(connection));
        Assert.Equal((ushort)4000, connection.CloseStatus);
        Assert.Equal("going", connection.CloseReason);
        Assert.Equal(0, connection.BytesQueued);
    }

    [Fact]
    public async Task Server_close_without_an_answer_ends_after_the_close_timeout()
    {
        // The timeout bounds the whole close, writing the close frame included: 2 s leaves a loaded CI machine (test
        // assemblies run in parallel) time to write it, where 0.3 s once aborted before the frame went out.
        await using var server = await WsTestServer.StartAsync(Options(closeTimeoutSeconds: 2));
        await using var client = await C.ConnectAndUpgradeAsync(server.EndPoint);
        var connection = await server.State.WaitForConnectionAsync();
        connection.Close(1001, "shutting down");

        Assert.Equal((ushort)1001, (await client.ReadFrameAsync()).CloseCode);
        Assert.True(await client.ReadUntilEofAsync(TimeSpan.FromSeconds(5)));
        Assert.Null(await server.State.WaitForEndAsync(connection));
        Assert.Equal((ushort)1001, connection.CloseStatus);
    }

    [Fact]
    public async Task Peer_close_is_recorded()
    {
        await using var server = await WsTestServer.StartAsync(Options());
        await using var client = await C.ConnectAndUpgradeAsync(server.EndPoint);
        var connection = await server.State.WaitForConnectionAsync();
        await client.SendFrameAsync(C.OpClose, C.ClosePayload(3001, "done"u8));
        Assert.Equal((ushort)3001, (await client.ReadFrameAsync()).CloseCode);
        Assert.True(await client.ReadUntilEofAsync());
        Assert.Null(await server.State.WaitForEndAsync(connection));
        Assert.Equal((ushort)3001, connection.CloseStatus);
        Assert.Equal("done", connection.CloseReason);
    }

    [Fact]
    public async Task Peer_vanishing_without_close_ends_the_connection()
    {
        await using var server = await WsTestServer.StartAsync(Options());
        var client = await C.ConnectAndUpgradeAsync(server.EndPoint);
        var connection = await server.State.WaitForConnectionAsync();
        await client.DisposeAsync();
        Assert.Null(await server.State.WaitForEndAsync(connection));
        Assert.Null(connection.CloseStatus);
        Assert.True(connection.Closing.IsCancellationRequested);
    }

    [Fact]
    public async Task Handler_fault_closes_with_1011_and_faults_run()
    {
        await using var server = await WsTestServer.StartAsync(Options());
        await using var client = await C.ConnectAndUpgradeAsync(server.EndPoint);
        var connection = await server.State.WaitForConnectionAsync();
        await client.SendFrameAsync(C.OpBinary, "throw"u8);
        Assert.Equal((ushort)1011, (await client.ReadCloseFrameAsync()).CloseCode);
        Assert.True(await client.ReadUntilEofAsync());
        var error = await server.State.WaitForEndAsync(connection);
        Assert.IsType<InvalidOperationException>(error);
    }

    [Fact]
    public async Task Idle_connection_gets_a_keep_alive_ping()
    {
        await using var server = await WsTestServer.StartAsync(Options(keepAliveSeconds: 0.2));
        await using var client = await C.ConnectAndUpgradeAsync(server.EndPoint);
        var ping = await client.ReadFrameAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(C.OpPing, ping.Opcode);
        Assert.True(ping.Fin);
    }

    [Fact]
    public async Task Abort_ends_at_once_without_a_close_frame()
    {
        await using var server = await WsTestServer.StartAsync(Options());
        await using var client = await C.ConnectAndUpgradeAsync(server.EndPoint);
        var connection = await server.State.WaitForConnectionAsync();
        connection.Abort();
        Assert.Null(await server.State.WaitForEndAsync(connection));
        Assert.Null(connection.CloseStatus);
        await Assert.ThrowsAsync<EndOfStreamException>(() => client.ReadFrameAsync());
    }

    [Fact]
    public async Task ClientWebSocket_interop_with_subprotocol_binary_echo_and_clean_close()
    {
        await using var server = await WsTestServer.StartAsync(Options(maxMessageBytes: 128 * 1024));
        using var client = new ClientWebSocket();
        client.Options.AddSubProtocol("chatgw.v1");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await client.ConnectAsync(server.WsUri("/v1/ws"), cts.Token);
        Assert.Equal("chatgw.v1", client.SubProtocol);

        var buffer = new byte[128 * 1024];
        foreach (int size in new[] { 10, 200, 70 * 1024 })
        {
            var payload = new byte[size];
            new Random(size).NextBytes(payload);
            await client.SendAsync(payload, WebSocketMessageType.Binary, endOfMessage: true, cts.Token);

            int received = 0;
            ValueWebSocketReceiveResult result;
            do
            {
                result = await client.ReceiveAsync(buffer.AsMemory(received), cts.Token);
                Assert.Equal(WebSocketMessageType.Binary, result.MessageType);
                received += result.Count;
            }
            while (!result.EndOfMessage);

            Assert.Equal(payload, buffer[..received]);
        }

        // ClientWebSocket also sends fragmented messages: one message in three SendAsync calls.
        await client.SendAsync("ab"u8.ToArray(), WebSocketMessageType.Binary, endOfMessage: false, cts.Token);
        await client.SendAsync("cd"u8.ToArray(), WebSocketMessageType.Binary, endOfMessage: false, cts.Token);
        await client.SendAsync("e"u8.ToArray(), WebSocketMessageType.Binary, endOfMessage: true, cts.Token);
        var joined = await client.ReceiveAsync(buffer.AsMemory(), cts.Token);
        Assert.True(joined.EndOfMessage);
        Assert.Equal("abcde"u8.ToArray(), buffer[..joined.Count]);

        await client.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", cts.Token);
        Assert.Equal(WebSocketState.Closed, client.State);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, client.CloseStatus);

        var connection = await server.State.WaitForConnectionAsync();
        Assert.Null(await server.State.WaitForEndAsync(connection));
        Assert.Equal((ushort)1000, connection.CloseStatus);
    }

    [Fact]
    public async Task ClientWebSocket_sees_the_server_close()
    {
        await using var server = await WsTestServer.StartAsync(Options());
        using var client = new ClientWebSocket();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await client.ConnectAsync(server.WsUri(), cts.Token);
        var connection = await server.State.WaitForConnectionAsync();
        connection.Close(4002, "slow consumer");

        var result = await client.ReceiveAsync(new byte[16], cts.Token);
        Assert.Equal(WebSocketMessageType.Close, result.MessageType);
        Assert.Equal((WebSocketCloseStatus)4002, client.CloseStatus);
        Assert.Equal("slow consumer", client.CloseStatusDescription);
        await client.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cts.Token);
        Assert.Null(await server.State.WaitForEndAsync(connection));
    }
}
