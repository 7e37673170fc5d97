using Gateway.Protocol;
using static Gateway.Client.Tests.TestHelpers;

namespace Gateway.Client.Tests;

public sealed class SendTests
{
    [Fact]
    public async Task A_send_is_written_with_a_guid_v7_id_and_completes_with_its_ack()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();

        var sending = client.SendAsync("c1", "image/png", new byte[] { 1, 2, 3 }, expiresAt: 1_800_000_000_000);
        var send = await conn.ReceiveAsync();
        Assert.Equal(FrameType.Send, send.Type);
        Assert.Equal(("c1", "image/png", 1_800_000_000_000L), (send.ChatId, send.ContentType, send.ExpiresAt!.Value));
        Assert.Equal(new byte[] { 1, 2, 3 }, send.Content);
        Assert.Equal(7, Guid.ParseExact(send.ClientMessageId, "N").Version);
        await conn.SendAsync(new SendAckFrame(send.RequestId, "c1", 42, "msg-42", 1_700_000_000_000, Duplicate: false));

        var ack = await sending.WaitAsync(TestTimeout);
        Assert.Equal((42UL, "msg-42", false), (ack.Seq, ack.MessageId, ack.Duplicate));
    }

    [Fact]
    public async Task Concurrent_sends_get_distinct_request_ids_and_their_own_acks()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();

        var sends = Enumerable.Range(0, 20).Select(i => client.SendTextAsync("c1", "text " + i)).ToArray();
        var received = new List<ReceivedFrame>();
        for (var i = 0; i < sends.Length; i++)
        {
            received.Add(await conn.ReceiveAsync(FrameType.Send));
        }

        Assert.Equal(sends.Length, received.Select(r => r.RequestId).Distinct().Count());
        Assert.Equal(Enumerable.Range(0, 20).Select(i => "text " + i), received.Select(r => r.Text)); // call order

        // Ack in reverse order: each task must still get the ack for its own message.
        foreach (var r in Enumerable.Reverse(received))
        {
            await conn.SendAsync(new SendAckFrame(r.RequestId, "c1", ulong.Parse(r.Text[5..], System.Globalization.CultureInfo.InvariantCulture) + 1, "m", 0, false));
        }

        var acks = await Task.WhenAll(sends).WaitAsync(TestTimeout);
        Assert.Equal(Enumerable.Range(1, 20).Select(i => (ulong)i), acks.Select(a => a.Seq));
    }

    [Fact]
    public async Task An_error_frame_becomes_a_ChatClientException_with_its_code()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();

        var sending = client.SendTextAsync("secret", "hi");
        var send = await conn.ReceiveAsync();
        await conn.SendAsync(new ErrorFrame(send.RequestId, ErrorCode.NotMember, "not a member"));

        var e = await Assert.ThrowsAsync<ChatClientException>(() => sending.WaitAsync(TestTimeout));
        Assert.Equal(ErrorCode.NotMember, e.Code);
        Assert.False(e.IsRetryable);

        // The connection is still good for the next request.
        var subscribing = client.SubscribeAsync([new ChatCursor("secret", 0)]);
        var subscribe = await conn.ReceiveAsync();
        await conn.SendAsync(new ErrorFrame(subscribe.RequestId, ErrorCode.LimitExceeded, "too many"));
        var e2 = await Assert.ThrowsAsync<ChatClientException>(() => subscribing.WaitAsync(TestTimeout));
        Assert.Equal(ErrorCode.LimitExceeded, e2.Code);
    }

    [Fact]
    public async Task A_retryable_error_is_retried_with_the_same_client_message_id()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();

        var sending = client.SendTextAsync("c1", "hi");
        var first = await conn.ReceiveAsync();
        await conn.SendAsync(new ErrorFrame(first.RequestId, ErrorCode.Unavailable, "store busy"));
        var second = await conn.ReceiveAsync();
        await conn.SendAsync(new ErrorFrame(second.RequestId, ErrorCode.Internal, "oops"));
        var third = await conn.ReceiveAsync();
        await conn.SendAsync(new SendAckFrame(third.RequestId, "c1", 1, "m1", 0, Duplicate: false));

        Assert.Equal(1UL, (await sending.WaitAsync(TestTimeout)).Seq);
        Assert.Equal(FrameType.Send, second.Type);
        Assert.Equal(first.ClientMessageId, second.ClientMessageId);
        Assert.Equal(first.ClientMessageId, third.ClientMessageId);
        Assert.Equal(3, new[] { first.RequestId, second.RequestId, third.RequestId }.Distinct().Count());
    }

    [Fact]
    public async Task A_send_without_answer_is_written_again_with_the_same_id_after_the_timeout()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server, o => o.RequestTimeout = TimeSpan.FromMilliseconds(200));
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();

        var sending = client.SendTextAsync("c1", "hi", CancellationToken.None);
        var first = await conn.ReceiveAsync(); // not answered
        var second = await conn.ReceiveAsync();
        await conn.SendAsync(new SendAckFrame(second.RequestId, "c1", 5, "m5", 0, Duplicate: true));

        var ack = await sending.WaitAsync(TestTimeout);
        Assert.Equal(first.ClientMessageId, second.ClientMessageId);
        Assert.NotEqual(first.RequestId, second.RequestId);
        Assert.True(ack.Duplicate);
    }

    [Fact]
    public async Task A_caller_supplied_client_message_id_is_used_and_oversized_content_is_refused_locally()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();

        var tooBig = new byte[ProtocolConstants.DefaultMaxContentBytes + 1];
        var e = await Assert.ThrowsAsync<ChatClientException>(() => client.SendAsync("c1", "application/octet-stream", tooBig));
        Assert.Equal(ErrorCode.ValidationFailed, e.Code);

        var sending = client.SendAsync("c1", "text/plain", "x"u8.ToArray(), clientMessageId: "my-key-1");
        var send = await conn.ReceiveAsync();
        Assert.Equal("my-key-1", send.ClientMessageId);
        await conn.SendAsync(new SendAckFrame(send.RequestId, "c1", 1, "m1", 0, false));
        await sending.WaitAsync(TestTimeout);
    }
}
