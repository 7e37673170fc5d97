using Gateway.Protocol;
using Gateway.TestUtilities;
using static Gateway.Client.Tests.TestHelpers;

namespace Gateway.Client.Tests;

public sealed class ResumeTests
{
    [Fact]
    public async Task A_drop_before_the_ack_reconnects_resubscribes_from_the_cursor_and_resends_the_same_id()
    {
        await using var server = await ScriptedServer.StartAsync();
        var tokens = 0;
        await using var client = NewClient(server, o =>
        {
            o.Token = null;
            o.TokenProvider = _ => ValueTask.FromResult("tok-" + Interlocked.Increment(ref tokens));
        });
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn1 = await server.AcceptAsync();
        await SubscribeOkAsync(client, conn1, new ChatCursor("c1", 0));
        await conn1.SendAsync(Msg("c1", 1), Msg("c1", 2), new CaughtUpFrame("c1", 2));
        Assert.Equal(1UL, (await client.NextMessageAsync()).Message.Seq);
        Assert.Equal(2UL, (await client.NextMessageAsync()).Message.Seq);
        Assert.IsType<CaughtUpFrame>(await client.NextEventAsync());
        Assert.Equal(2UL, client.GetCursor("c1"));

        var sending = client.SendTextAsync("c1", "hello");
        var lost = await conn1.ReceiveAsync();
        Assert.Equal(FrameType.Send, lost.Type);
        conn1.Abort(); // the server crashes before acking

        var conn2 = await server.AcceptAsync();
        Assert.Equal("Bearer tok-2", conn2.Authorization); // the provider was asked again
        var resubscribe = await conn2.ReceiveAsync();
        Assert.Equal(FrameType.Subscribe, resubscribe.Type);
        Assert.Equal([new ChatCursor("c1", 2)], resubscribe.Cursors);
        var resend = await conn2.ReceiveAsync();
        Assert.Equal(FrameType.Send, resend.Type);
        Assert.Equal(lost.ClientMessageId, resend.ClientMessageId);
        Assert.Equal("hello", resend.Text);

        await conn2.SendAsync(Ok(resubscribe, headSeq: 3), Msg("c1", 3, "hello"), new CaughtUpFrame("c1", 3));
        await conn2.SendAsync(new SendAckFrame(resend.RequestId, "c1", 3, "m3", 0, Duplicate: true));

        var ack = await sending.WaitAsync(TestTimeout);
        Assert.Equal(3UL, ack.Seq);
        Assert.Equal(3UL, (await client.NextMessageAsync()).Message.Seq);
        Assert.Equal(1, client.Reconnects);
        Assert.Equal(0, client.DuplicatesDropped);
        Assert.Equal(0, client.GapsDetected);
        await Poll.UntilAsync(() => client.State == ChatConnectionState.Connected, "connected again");
    }

    [Fact]
    public async Task Messages_at_or_below_the_cursor_are_dropped_and_counted()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();
        await SubscribeOkAsync(client, conn, new ChatCursor("c1", 0));

        await conn.SendAsync(Msg("c1", 1), Msg("c1", 2), Msg("c1", 2), Msg("c1", 1), Msg("c1", 3));

        Assert.Equal(1UL, (await client.NextMessageAsync()).Message.Seq);
        Assert.Equal(2UL, (await client.NextMessageAsync()).Message.Seq);
        Assert.Equal(3UL, (await client.NextMessageAsync()).Message.Seq); // frames are handled in order: the duplicates came before
        Assert.Equal(2, client.DuplicatesDropped);
        Assert.Equal(0, client.GapsDetected);
        Assert.Equal(3UL, client.GetCursor("c1"));
    }

    [Fact]
    public async Task A_gap_resubscribes_the_chat_from_its_cursor_and_the_replay_fills_it()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();
        await SubscribeOkAsync(client, conn, new ChatCursor("c1", 0), new ChatCursor("c2", 0));

        await conn.SendAsync(Msg("c1", 1), Msg("c1", 3), Msg("c1", 4), Msg("c2", 1));
        var repair = await conn.ReceiveAsync();
        Assert.Equal(FrameType.Subscribe, repair.Type);
        Assert.Equal([new ChatCursor("c1", 1)], repair.Cursors);
        await conn.SendAsync(Ok(repair, headSeq: 4), Msg("c1", 2), Msg("c1", 3), Msg("c1", 4), new CaughtUpFrame("c1", 4));

        var seen = new List<(string, ulong)>();
        while (seen.Count < 5)
        {
            var message = await client.NextMessageAsync();
            seen.Add((message.ChatId, message.Message.Seq));
        }

        Assert.Equal([("c1", 1UL), ("c2", 1UL), ("c1", 2UL), ("c1", 3UL), ("c1", 4UL)], seen);
        Assert.Equal(new CaughtUpFrame("c1", 4), await client.NextEventAsync());
        Assert.Equal(1, client.GapsDetected);
        Assert.Equal(0, client.DuplicatesDropped);
        Assert.Equal(4UL, client.GetCursor("c1"));
    }

    [Fact]
    public async Task A_hole_the_replay_cannot_fill_is_skipped_after_one_resubscribe()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();
        await SubscribeOkAsync(client, conn, new ChatCursor("c1", 0));

        await conn.SendAsync(Msg("c1", 1), Msg("c1", 3));
        var repair = await conn.ReceiveAsync();
        Assert.Equal([new ChatCursor("c1", 1)], repair.Cursors);
        // Seq 2 expired: the replay from 1 starts at 3.
        await conn.SendAsync(Ok(repair, headSeq: 3), Msg("c1", 3), new CaughtUpFrame("c1", 3), Msg("c1", 4));

        Assert.Equal(1UL, (await client.NextMessageAsync()).Message.Seq);
        Assert.Equal(3UL, (await client.NextMessageAsync()).Message.Seq);
        Assert.Equal(new CaughtUpFrame("c1", 3), await client.NextEventAsync());
        Assert.Equal(4UL, (await client.NextMessageAsync()).Message.Seq);
        Assert.Equal(2, client.GapsDetected);
        Assert.Equal(0, client.DuplicatesDropped);
    }

    [Fact]
    public async Task Without_auto_reconnect_a_drop_ends_the_client()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server, o => o.AutoReconnect = false);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();

        conn.Abort();

        var e = await Assert.ThrowsAsync<ChatClientException>(() => client.Events.Completion.WaitAsync(TestTimeout));
        Assert.Equal(ErrorCode.Unavailable, e.Code);
        Assert.Equal(ChatConnectionState.Closed, client.State);
        Assert.Equal(0, client.Reconnects);
        Assert.Equal(1, server.AcceptedCount);
    }

    [Fact]
    public async Task A_revoked_chat_is_forgotten_and_not_resubscribed_after_a_slow_consumer_close()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn1 = await server.AcceptAsync();
        await SubscribeOkAsync(client, conn1, new ChatCursor("c1", 5), new ChatCursor("c2", 7));

        await conn1.SendAsync(new RevokedFrame("c2", ErrorCode.NotMember, "removed"));
        var revoked = Assert.IsType<RevokedFrame>(await client.NextEventAsync());
        Assert.Equal(("c2", ErrorCode.NotMember), (revoked.ChatId, revoked.Code));
        Assert.Null(client.GetCursor("c2"));

        await conn1.CloseAsync(CloseCodes.SlowConsumer, "queue full");
        var conn2 = await server.AcceptAsync();
        var resubscribe = await conn2.ReceiveAsync();
        Assert.Equal([new ChatCursor("c1", 5)], resubscribe.Cursors);
    }

    [Fact]
    public async Task A_chat_refused_on_resume_is_reported_as_revoked_and_forgotten()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn1 = await server.AcceptAsync();
        await SubscribeOkAsync(client, conn1, new ChatCursor("c1", 0), new ChatCursor("c2", 0));

        await conn1.CloseAsync(CloseCodes.GoingAway, "drain");
        var conn2 = await server.AcceptAsync();
        var resubscribe = await conn2.ReceiveAsync();
        Assert.Equal(["c1", "c2"], resubscribe.ChatIds.Order());
        await conn2.SendAsync(new SubscribedFrame(resubscribe.RequestId,
            [new SubscribeResult("c1", ErrorCode.None, 0), new SubscribeResult("c2", ErrorCode.NotMember, 0)]));

        var revoked = Assert.IsType<RevokedFrame>(await client.NextEventAsync());
        Assert.Equal(("c2", ErrorCode.NotMember), (revoked.ChatId, revoked.Code));
        Assert.Null(client.GetCursor("c2"));
        Assert.Equal(0UL, client.GetCursor("c1"));
    }

    [Fact]
    public async Task Requests_other_than_sends_fail_when_the_connection_drops_and_work_after_the_reconnect()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn1 = await server.AcceptAsync();

        var paging = client.GetHistoryAsync("c1", 0, 50);
        Assert.Equal(FrameType.History, (await conn1.ReceiveAsync()).Type);
        conn1.Abort();
        var e = await Assert.ThrowsAsync<ChatClientException>(() => paging.WaitAsync(TestTimeout));
        Assert.Equal(ErrorCode.Unavailable, e.Code);

        var conn2 = await server.AcceptAsync();
        var paging2 = client.GetHistoryAsync("c1", 0, 50);
        var request = await conn2.ReceiveAsync();
        Assert.Equal(1U, request.RequestId); // request ids start again per connection
        await conn2.SendAsync(new HistoryPageFrame(request.RequestId, "c1", [], HasMore: false));
        Assert.Empty((await paging2.WaitAsync(TestTimeout)).Messages);
    }

    [Fact]
    public async Task An_expired_token_close_reconnects_with_a_fresh_token_from_the_provider()
    {
        await using var server = await ScriptedServer.StartAsync();
        var tokens = 0;
        await using var client = NewClient(server, o =>
        {
            o.Token = null;
            o.TokenProvider = _ => ValueTask.FromResult("tok-" + Interlocked.Increment(ref tokens));
        });
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn1 = await server.AcceptAsync();
        Assert.Equal("Bearer tok-1", conn1.Authorization);

        await conn1.CloseAsync(CloseCodes.TokenExpired, "token expired");

        var conn2 = await server.AcceptAsync();
        Assert.Equal("Bearer tok-2", conn2.Authorization);
        await Poll.UntilAsync(() => client.Reconnects == 1, "one reconnect");
    }

    [Fact]
    public async Task A_slow_reader_holds_back_the_socket_and_still_gets_every_message_in_order()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server, o => o.EventBufferCapacity = 2);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();
        await SubscribeOkAsync(client, conn, new ChatCursor("c1", 0));
        var sending = client.SendTextAsync("c1", "hi");
        var send = await conn.ReceiveAsync();

        // 50 messages, then the ack. With room for 2 events the client stops reading after the first few,
        // so the ack (behind them on the socket) cannot be read until the application reads events.
        for (ulong seq = 1; seq <= 50; seq++)
        {
            await conn.SendAsync(Msg("c1", seq));
        }

        await conn.SendAsync(new SendAckFrame(send.RequestId, "c1", 51, "m51", 0, false));
        Assert.False(sending.IsCompleted);

        for (ulong seq = 1; seq <= 50; seq++)
        {
            Assert.Equal(seq, (await client.NextMessageAsync()).Message.Seq);
        }

        Assert.Equal(51UL, (await sending.WaitAsync(TestTimeout)).Seq);
        Assert.Equal(0, client.DuplicatesDropped);
    }

    [Fact]
    public async Task Dispose_fails_pending_sends_and_completes_the_event_stream()
    {
        await using var server = await ScriptedServer.StartAsync();
        var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();
        var sending = client.SendTextAsync("c1", "never acked");
        await conn.ReceiveAsync();

        await client.DisposeAsync().AsTask().WaitAsync(TestTimeout);

        await Assert.ThrowsAsync<ObjectDisposedException>(() => sending.WaitAsync(TestTimeout));
        await client.Events.Completion.WaitAsync(TestTimeout);
        Assert.Equal(ChatConnectionState.Closed, client.State);
    }
}
