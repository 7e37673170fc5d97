using Gateway.Protocol;
using Gateway.TestUtilities;
using static Gateway.Client.Tests.TestHelpers;

namespace Gateway.Client.Tests;

public sealed class TypingTests
{
    [Fact]
    public async Task Typing_is_written_without_waiting_for_an_answer_and_an_error_for_it_breaks_nothing()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();

        Assert.True(await client.SendTypingAsync("c1").WaitAsync(TestTimeout));
        var typing = await conn.ReceiveAsync();
        Assert.Equal((FrameType.Typing, "c1"), (typing.Type, typing.ChatId));
        Assert.NotEqual(0U, typing.RequestId);

        // The server refuses it: logged only, and the next request on the connection gets its own answer.
        await conn.SendAsync(new ErrorFrame(typing.RequestId, ErrorCode.NotMember, "not a member"));
        var paging = client.GetHistoryAsync("c1", 0, 1);
        var history = await conn.ReceiveAsync();
        Assert.Equal(FrameType.History, history.Type);
        Assert.NotEqual(typing.RequestId, history.RequestId);
        await conn.SendAsync(new HistoryPageFrame(history.RequestId, "c1", [], HasMore: false));
        Assert.Empty((await paging.WaitAsync(TestTimeout)).Messages);
        Assert.Equal(ChatConnectionState.Connected, client.State);
    }

    [Fact]
    public async Task Typing_notices_of_subscribed_chats_arrive_in_order_with_messages_and_others_are_dropped()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();
        await SubscribeOkAsync(client, conn, new ChatCursor("c1", 0));

        await conn.SendAsync(Msg("c1", 1), new UserTypingFrame("nope", "mallory"), new UserTypingFrame("c1", "bob"), Msg("c1", 2));

        Assert.Equal(1UL, (await client.NextMessageAsync()).Message.Seq);
        Assert.Equal(new UserTypingFrame("c1", "bob"), await client.NextEventAsync());
        Assert.Equal(2UL, (await client.NextMessageAsync()).Message.Seq);
        Assert.Equal(2UL, client.GetCursor("c1")); // typing moves no cursor
        Assert.Equal(0, client.TypingNoticesDropped);
    }

    [Fact]
    public async Task With_a_full_event_buffer_typing_is_dropped_and_counted_while_messages_wait()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server, o => o.EventBufferCapacity = 2);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();
        await SubscribeOkAsync(client, conn, new ChatCursor("c1", 0));

        // Two messages fill the buffer; the typing notice behind them finds no room.
        await conn.SendAsync(Msg("c1", 1), Msg("c1", 2), new UserTypingFrame("c1", "bob"), Msg("c1", 3));
        await Poll.UntilAsync(() => client.TypingNoticesDropped == 1, "the typing notice dropped");

        Assert.Equal(1UL, (await client.NextMessageAsync()).Message.Seq);
        Assert.Equal(2UL, (await client.NextMessageAsync()).Message.Seq);
        Assert.Equal(3UL, (await client.NextMessageAsync()).Message.Seq); // the message waited for room instead
    }

    [Fact]
    public async Task Typing_without_a_connection_is_dropped_not_queued()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn1 = await server.AcceptAsync();

        server.RejectStatus = 503; // reconnect attempts fail until the test lets them in
        conn1.Abort();
        await Poll.UntilAsync(() => client.State == ChatConnectionState.Reconnecting, "reconnecting");
        Assert.False(await client.SendTypingAsync("c1").WaitAsync(TestTimeout));

        server.RejectStatus = null;
        var conn2 = await server.AcceptAsync();
        await Poll.UntilAsync(() => client.State == ChatConnectionState.Connected, "connected again");
        var paging = client.GetHistoryAsync("c1", 0, 1);
        var history = await conn2.ReceiveAsync();
        Assert.Equal(FrameType.History, history.Type); // no stale typing was written before it
        Assert.True(await client.SendTypingAsync("c1").WaitAsync(TestTimeout));
        Assert.Equal(FrameType.Typing, (await conn2.ReceiveAsync()).Type);
        await conn2.SendAsync(new HistoryPageFrame(history.RequestId, "c1", [], HasMore: false));
        await paging.WaitAsync(TestTimeout);
    }
}
