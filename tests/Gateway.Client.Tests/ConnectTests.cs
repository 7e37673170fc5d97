using System.Text;
using Gateway.Protocol;
using static Gateway.Client.Tests.TestHelpers;

namespace Gateway.Client.Tests;

public sealed class ConnectTests
{
    [Fact]
    public async Task Connect_waits_for_hello_and_sends_bearer_token_and_subprotocol()
    {
        await using var server = await ScriptedServer.StartAsync();
        var states = new List<ChatConnectionState>();
        await using var client = NewClient(server);
        client.ConnectionStateChanged += (_, e) =>
        {
            lock (states)
            {
                states.Add(e.State);
            }
        };

        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();

        Assert.Equal("Bearer tok-1", conn.Authorization);
        Assert.Contains(ProtocolConstants.SubProtocol, conn.RequestedProtocols);
        Assert.Equal(ProtocolConstants.SubProtocol, conn.SelectedProtocol);
        Assert.Empty(conn.AccessTokenQuery);
        Assert.NotNull(client.Hello);
        Assert.Equal("alice", client.Hello.UserId);
        Assert.Equal("session-1", client.Hello.SessionId);
        Assert.Equal(ChatConnectionState.Connected, client.State);
        lock (states)
        {
            Assert.Equal([ChatConnectionState.Connecting, ChatConnectionState.Connected], states);
        }
    }

    [Fact]
    public async Task Token_in_query_replaces_the_header_and_comes_from_the_provider()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server, o =>
        {
            o.Token = null;
            o.TokenProvider = _ => ValueTask.FromResult("a b+c");
            o.TokenInQuery = true;
        });

        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();

        Assert.Equal("a b+c", conn.AccessTokenQuery);
        Assert.Empty(conn.Authorization);
    }

    [Fact]
    public async Task Refused_upgrade_throws_with_the_http_status()
    {
        await using var server = await ScriptedServer.StartAsync();
        server.RejectStatus = 401;
        await using var client = NewClient(server);

        var e = await Assert.ThrowsAsync<ChatClientException>(() => client.ConnectAsync().WaitAsync(TestTimeout));

        Assert.Equal(401, e.HttpStatus);
        Assert.Equal(ChatConnectionState.Disconnected, client.State);
    }

    [Fact]
    public async Task History_request_returns_the_page()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();

        var paging = client.GetHistoryAsync("c1", beforeSeq: 10, limit: 2);
        var request = await conn.ReceiveAsync();
        Assert.Equal(FrameType.History, request.Type);
        Assert.Equal(("c1", 10UL, 2U), (request.ChatId, request.BeforeSeq, request.Limit));
        await conn.SendAsync(new HistoryPageFrame(request.RequestId, "c1", [Msg("c1", 8).Message, Msg("c1", 9).Message], HasMore: true));

        var page = await paging.WaitAsync(TestTimeout);
        Assert.True(page.HasMore);
        Assert.Equal([8UL, 9UL], page.Messages.Select(m => m.Seq));
        Assert.Equal("message 9", Encoding.UTF8.GetString(page.Messages[1].Content.Span));
    }

    [Fact]
    public async Task Unsubscribe_forgets_the_chat()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();
        await SubscribeOkAsync(client, conn, new ChatCursor("c1", 4));
        Assert.Equal(4UL, client.GetCursor("c1"));

        var unsubscribing = client.UnsubscribeAsync(["c1"]);
        var request = await conn.ReceiveAsync();
        Assert.Equal(FrameType.Unsubscribe, request.Type);
        Assert.Equal(["c1"], request.ChatIds);
        await conn.SendAsync(new UnsubscribedFrame(request.RequestId));
        await unsubscribing.WaitAsync(TestTimeout);

        Assert.Null(client.GetCursor("c1"));
        Assert.Empty(client.GetCursors());
    }

    [Fact]
    public async Task A_client_bug_close_ends_the_client_without_reconnecting()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();

        await conn.CloseAsync(CloseCodes.PolicyViolation, "too many bad frames");

        var e = await Assert.ThrowsAsync<ChatClientException>(async () =>
        {
            await foreach (var unused in client.ReadEventsAsync().WithCancellation(CancellationToken.None))
            {
            }
        }).WaitAsync(TestTimeout);
        Assert.Equal(CloseCodes.PolicyViolation, e.CloseStatus);
        Assert.Equal(ChatConnectionState.Closed, client.State);
        Assert.Equal(0, client.Reconnects);
        var send = await Assert.ThrowsAsync<ChatClientException>(() => client.SendTextAsync("c1", "hi"));
        Assert.Equal(CloseCodes.PolicyViolation, send.CloseStatus);
        Assert.Equal(1, server.AcceptedCount);
    }
}
