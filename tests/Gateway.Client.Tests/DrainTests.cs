using System.Diagnostics;
using System.Net.WebSockets;
using Gateway.Protocol;
using Gateway.TestUtilities;
using static Gateway.Client.Tests.TestHelpers;

namespace Gateway.Client.Tests;

public sealed class DrainTests
{
    [Fact]
    public async Task Drain_keeps_serving_until_the_delay_then_closes_normally_and_resumes_elsewhere()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn1 = await server.AcceptAsync();
        await SubscribeOkAsync(client, conn1, new ChatCursor("c1", 0));
        await conn1.SendAsync(Msg("c1", 1), new CaughtUpFrame("c1", 1));
        Assert.Equal(1UL, (await client.NextMessageAsync()).Message.Seq);
        Assert.IsType<CaughtUpFrame>(await client.NextEventAsync());

        var clock = Stopwatch.StartNew();
        // A 1 s delay leaves a loaded CI machine room to write, ack and deliver the send below before the close.
        await conn1.SendAsync(new DrainFrame(1000, "server draining"));

        // Still served during the delay: a send goes out on the draining connection and is acked there.
        var sending = client.SendTextAsync("c1", "during drain");
        var send = await conn1.ReceiveAsync();
        Assert.Equal(FrameType.Send, send.Type);
        await conn1.SendAsync(new SendAckFrame(send.RequestId, "c1", 2, "m2", 0, false));
        Assert.Equal(2UL, (await sending.WaitAsync(TestTimeout)).Seq);
        await conn1.SendAsync(Msg("c1", 2, "during drain"));
        Assert.Equal(2UL, (await client.NextMessageAsync()).Message.Seq);

        Assert.Equal(WebSocketCloseStatus.NormalClosure, await conn1.ReceiveCloseAsync());
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(950), $"closed after {clock.Elapsed}, before the drain delay");
        await conn1.CloseAsync(CloseCodes.Normal);

        var conn2 = await server.AcceptAsync();
        var resubscribe = await conn2.ReceiveAsync();
        Assert.Equal([new ChatCursor("c1", 2)], resubscribe.Cursors);
        await conn2.SendAsync(Ok(resubscribe, headSeq: 2), new CaughtUpFrame("c1", 2));
        Assert.Equal(new CaughtUpFrame("c1", 2), await client.NextEventAsync());
        await Poll.UntilAsync(() => client.Reconnects == 1 && client.State == ChatConnectionState.Connected, "resumed");
    }

    [Fact]
    public async Task Unacked_sends_cross_the_drain_once_and_an_ack_after_the_close_frame_still_counts()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn1 = await server.AcceptAsync();

        var lost = client.SendTextAsync("c1", "never acked on conn1");
        var lostFrame = await conn1.ReceiveAsync();
        var late = client.SendTextAsync("c1", "acked after the client's close");
        var lateFrame = await conn1.ReceiveAsync();

        await conn1.SendAsync(new DrainFrame(0, "server draining"));
        Assert.Equal(WebSocketCloseStatus.NormalClosure, await conn1.ReceiveCloseAsync());

        // The client keeps reading until the server's close reply: this ack still completes its send.
        await conn1.SendAsync(new SendAckFrame(lateFrame.RequestId, "c1", 1, "m1", 0, false));
        Assert.Equal(1UL, (await late.WaitAsync(TestTimeout)).Seq);
        await conn1.CloseAsync(CloseCodes.Normal);

        var conn2 = await server.AcceptAsync();
        var resend = await conn2.ReceiveAsync();
        Assert.Equal((FrameType.Send, lostFrame.ClientMessageId, "never acked on conn1"), (resend.Type, resend.ClientMessageId, resend.Text));
        await conn2.SendAsync(new SendAckFrame(resend.RequestId, "c1", 2, "m2", 0, false));
        Assert.Equal(2UL, (await lost.WaitAsync(TestTimeout)).Seq);

        // The acked send is not written again: the next frame is the application's next request.
        var paging = client.GetHistoryAsync("c1", 0, 5);
        var history = await conn2.ReceiveAsync();
        Assert.Equal(FrameType.History, history.Type);
        await conn2.SendAsync(new HistoryPageFrame(history.RequestId, "c1", [], HasMore: false));
        await paging.WaitAsync(TestTimeout);
    }

    [Fact]
    public async Task A_request_issued_while_the_drain_close_is_under_way_goes_to_the_next_connection()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn1 = await server.AcceptAsync();

        await conn1.SendAsync(new DrainFrame(0, "server draining"));
        Assert.Equal(WebSocketCloseStatus.NormalClosure, await conn1.ReceiveCloseAsync());

        // The client is between connections (the server has not answered the close yet).
        var sending = client.SendTextAsync("c1", "after the close frame");
        var paging = client.GetHistoryAsync("c1", 0, 5);
        await conn1.CloseAsync(CloseCodes.Normal);

        var conn2 = await server.AcceptAsync();
        var first = await conn2.ReceiveAsync();
        var second = await conn2.ReceiveAsync();
        var send = first.Type == FrameType.Send ? first : second;
        var history = first.Type == FrameType.History ? first : second;
        Assert.Equal((FrameType.Send, FrameType.History), (send.Type, history.Type));
        await conn2.SendAsync(new SendAckFrame(send.RequestId, "c1", 1, "m1", 0, false));
        await conn2.SendAsync(new HistoryPageFrame(history.RequestId, "c1", [], HasMore: false));
        Assert.Equal(1UL, (await sending.WaitAsync(TestTimeout)).Seq);
        Assert.Empty((await paging.WaitAsync(TestTimeout)).Messages);
    }

    [Fact]
    public async Task A_server_close_with_1001_before_the_drain_delay_reconnects_at_once()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn1 = await server.AcceptAsync();
        await SubscribeOkAsync(client, conn1, new ChatCursor("c1", 4));

        // A delay far beyond the test timeout: only the server's close can move the client in time.
        await conn1.SendAsync(new DrainFrame(600_000, "server draining"));
        await conn1.CloseAsync(CloseCodes.GoingAway, "server draining");

        var conn2 = await server.AcceptAsync();
        var resubscribe = await conn2.ReceiveAsync();
        Assert.Equal([new ChatCursor("c1", 4)], resubscribe.Cursors);
        await Poll.UntilAsync(() => client.Reconnects == 1, "one reconnect");
    }
}
