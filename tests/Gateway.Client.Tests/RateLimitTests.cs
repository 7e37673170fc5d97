using System.Diagnostics;
using Gateway.Protocol;
using static Gateway.Client.Tests.TestHelpers;

namespace Gateway.Client.Tests;

public sealed class RateLimitTests
{
    [Fact]
    public async Task A_rate_limited_send_waits_retry_after_then_goes_again_with_the_same_id()
    {
        await using var server = await ScriptedServer.StartAsync();
        // Back-off is 10..50 ms in tests and the request timeout 1.5 s: a retry before 2 s would be either. The
        // timeout must not fire before the error arrives (its rewrite would come first), so it leaves the scripted
        // server 1.5 s to answer: a loaded machine has needed more than 700 ms for it.
        await using var client = NewClient(server, o => o.RequestTimeout = TimeSpan.FromMilliseconds(1500));
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();

        var sending = client.SendTextAsync("c1", "hi");
        var first = await conn.ReceiveAsync();
        var clock = Stopwatch.StartNew();
        await conn.SendAsync(new ErrorFrame(first.RequestId, ErrorCode.RateLimited, "slow down", RetryAfterMs: 2000));
        var second = await conn.ReceiveAsync();
        var waited = clock.Elapsed;

        Assert.Equal((FrameType.Send, first.ClientMessageId), (second.Type, second.ClientMessageId));
        Assert.True(waited >= TimeSpan.FromMilliseconds(1950), $"retried after {waited}, before retryAfterMs");
        await conn.SendAsync(new SendAckFrame(second.RequestId, "c1", 1, "m1", 0, Duplicate: false));
        Assert.Equal(1UL, (await sending.WaitAsync(TestTimeout)).Seq);
    }

    [Fact]
    public async Task A_send_waiting_out_retry_after_is_written_once_by_its_timer_after_a_reconnect()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn1 = await server.AcceptAsync();
        await SubscribeOkAsync(client, conn1, new ChatCursor("c1", 0));

        var sending = client.SendTextAsync("c1", "hi");
        var first = await conn1.ReceiveAsync();
        // The typing notice behind the error shows when the client has handled the error.
        await conn1.SendAsync(new ErrorFrame(first.RequestId, ErrorCode.RateLimited, "slow down", RetryAfterMs: 400), new UserTypingFrame("c1", "bob"));
        Assert.IsType<UserTypingFrame>(await client.NextEventAsync());
        conn1.Abort(); // the connection drops while the send waits

        var conn2 = await server.AcceptAsync();
        var resubscribe = await conn2.ReceiveAsync();
        Assert.Equal(FrameType.Subscribe, resubscribe.Type);
        await conn2.SendAsync(Ok(resubscribe));
        var clock = Stopwatch.StartNew();
        var paging = client.GetHistoryAsync("c1", 0, 1);
        var history = await conn2.ReceiveAsync();
        Assert.Equal(FrameType.History, history.Type); // the resume did not write the waiting send
        await conn2.SendAsync(new HistoryPageFrame(history.RequestId, "c1", [], HasMore: false));
        await paging.WaitAsync(TestTimeout);

        var retry = await conn2.ReceiveAsync();
        Assert.Equal((FrameType.Send, first.ClientMessageId), (retry.Type, retry.ClientMessageId));
        await conn2.SendAsync(new SendAckFrame(retry.RequestId, "c1", 1, "m1", 0, Duplicate: false));
        Assert.Equal(1UL, (await sending.WaitAsync(TestTimeout)).Seq);
        Assert.True(clock.Elapsed < TestTimeout);
    }

    [Fact]
    public async Task Rate_limited_requests_other_than_sends_fail_with_retry_after()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();

        var paging = client.GetHistoryAsync("c1", 0, 10);
        var history = await conn.ReceiveAsync();
        await conn.SendAsync(new ErrorFrame(history.RequestId, ErrorCode.RateLimited, "slow down", RetryAfterMs: 1500));
        var e = await Assert.ThrowsAsync<ChatClientException>(() => paging.WaitAsync(TestTimeout));
        Assert.Equal((ErrorCode.RateLimited, TimeSpan.FromMilliseconds(1500), true), (e.Code, e.RetryAfter, e.IsRetryable));

        var subscribing = client.SubscribeAsync([new ChatCursor("c1", 0)]);
        var subscribe = await conn.ReceiveAsync();
        await conn.SendAsync(new ErrorFrame(subscribe.RequestId, ErrorCode.RateLimited, "slow down", RetryAfterMs: 250));
        var e2 = await Assert.ThrowsAsync<ChatClientException>(() => subscribing.WaitAsync(TestTimeout));
        Assert.Equal(TimeSpan.FromMilliseconds(250), e2.RetryAfter);
        Assert.Null(client.GetCursor("c1")); // not subscribed

        // An error without the hint has no RetryAfter (a four-element Error, as older servers send).
        var paging2 = client.GetHistoryAsync("c1", 0, 10);
        var history2 = await conn.ReceiveAsync();
        await conn.SendAsync(new ErrorFrame(history2.RequestId, ErrorCode.ValidationFailed, "bad limit"));
        var e3 = await Assert.ThrowsAsync<ChatClientException>(() => paging2.WaitAsync(TestTimeout));
        Assert.Null(e3.RetryAfter);
    }

    [Fact]
    public async Task A_rate_limited_resume_subscribe_is_sent_again_from_the_cursor()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn1 = await server.AcceptAsync();
        await SubscribeOkAsync(client, conn1, new ChatCursor("c1", 3), new ChatCursor("c2", 9));
        conn1.Abort();

        var conn2 = await server.AcceptAsync();
        var resume = await conn2.ReceiveAsync();
        Assert.Equal(FrameType.Subscribe, resume.Type);
        await conn2.SendAsync(new ErrorFrame(resume.RequestId, ErrorCode.RateLimited, "slow down", RetryAfterMs: 100));

        var again = await conn2.ReceiveAsync();
        Assert.Equal(FrameType.Subscribe, again.Type);
        Assert.Equal([new ChatCursor("c1", 3), new ChatCursor("c2", 9)], again.Cursors.OrderBy(c => c.ChatId));
        await conn2.SendAsync(Ok(again, headSeq: 9), Msg("c1", 4));
        Assert.Equal(("c1", 4UL), (await client.NextMessageAsync()) is var m ? (m.ChatId, m.Message.Seq) : default);
        Assert.Equal(0, client.GapsDetected);
    }
}
