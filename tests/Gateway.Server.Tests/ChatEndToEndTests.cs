using System.Text;
using Gateway.Protocol;

namespace Gateway.Server.Tests;

/// <summary>End to end over real sockets against the embedded gateway: the guarantees of proto/PROTOCOL.md §7.</summary>
public sealed class ChatEndToEndTests
{
    private static string Text(MessageFields m) => Encoding.UTF8.GetString(m.Content.Span);

    /// <summary>Reads frames until <paramref name="count"/> Message frames of <paramref name="chatId"/> arrived,
    /// collecting them; other frames are returned separately.</summary>
    private static async Task<List<MessageFields>> ReceiveMessagesAsync(WsClient client, string chatId, int count, List<ServerFrame>? others = null)
    {
        var messages = new List<MessageFields>();
        while (messages.Count < count)
        {
            var frame = await client.ReceiveAsync() ?? throw new Xunit.Sdk.XunitException("connection closed");
            if (frame is MessageFrame m && m.ChatId == chatId)
            {
                messages.Add(m.Message);
            }
            else
            {
                others?.Add(frame);
            }
        }

        return messages;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // Kestrel's inline scheduling (Gateway:PreferInlineScheduling): same behaviour, other threads
    public async Task Two_members_chat_and_both_see_dense_seqs(bool inlineScheduling)
    {
        await using var gw = await TestGateway.StartAsync(null, $"--Gateway:PreferInlineScheduling={inlineScheduling}");
        await gw.CreateChatAsync("general", "alice", "bob");
        await using var alice = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
        await using var bob = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("bob"));
        Assert.Equal("alice", alice.Hello.UserId);
        Assert.Equal("t1", alice.Hello.TenantId);

        foreach (var c in new[] { alice, bob })
        {
            var id = await c.SubscribeAsync(new ChatCursor("general", 0));
            var subscribed = await c.ReceiveAsync<SubscribedFrame>();
            Assert.Equal(id, subscribed.RequestId);
            Assert.Equal(new SubscribeResult("general", ErrorCode.None, 0), Assert.Single(subscribed.Results));
            Assert.Equal(new CaughtUpFrame("general", 0), await c.ReceiveAsync<CaughtUpFrame>());
        }

        const int n = 10;
        for (var i = 0; i < n; i++)
        {
            var sender = i % 2 == 0 ? alice : bob;
            await sender.SendTextAsync("general", $"hello {i}");
        }

        var aliceOthers = new List<ServerFrame>();
        var bobOthers = new List<ServerFrame>();
        var seenByAlice = await ReceiveMessagesAsync(alice, "general", n, aliceOthers);
        var seenByBob = await ReceiveMessagesAsync(bob, "general", n, bobOthers);
        Assert.Equal(Enumerable.Range(1, n).Select(i => (ulong)i), seenByAlice.Select(m => m.Seq));
        Assert.Equal(Enumerable.Range(1, n).Select(i => (ulong)i), seenByBob.Select(m => m.Seq));
        // Both see the same order; the two senders raced, so only each sender's own order is fixed.
        Assert.Equal(seenByAlice.Select(m => m.MessageId), seenByBob.Select(m => m.MessageId));
        Assert.Equal(Enumerable.Range(0, n).Where(i => i % 2 == 0).Select(i => $"hello {i}"), seenByBob.Where(m => m.SenderId == "alice").Select(Text));
        Assert.Equal(Enumerable.Range(0, n).Where(i => i % 2 == 1).Select(i => $"hello {i}"), seenByBob.Where(m => m.SenderId == "bob").Select(Text));

        // Every send is acknowledged with the seq the others saw.
        while (aliceOthers.OfType<SendAckFrame>().Count() < n / 2)
        {
            aliceOthers.Add(await alice.ReceiveAsync() ?? throw new Xunit.Sdk.XunitException("closed"));
        }

        var acks = aliceOthers.OfType<SendAckFrame>().ToList();
        Assert.All(acks, a => Assert.False(a.Duplicate));
        Assert.Equal(seenByAlice.Where(m => m.SenderId == "alice").Select(m => m.MessageId).Order(), acks.Select(a => a.MessageId).Order());
    }

    [Fact]
    public async Task Non_member_can_neither_subscribe_nor_send()
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateChatAsync("secret", "alice");
        await using var mallory = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("mallory"));

        await mallory.SubscribeAsync(new ChatCursor("secret", 0), new ChatCursor("no-such-chat", 0));
        var subscribed = await mallory.ReceiveAsync<SubscribedFrame>();
        Assert.Equal([ErrorCode.NotMember, ErrorCode.NotMember], subscribed.Results.Select(r => r.Code));

        var sendId = await mallory.SendTextAsync("secret", "let me in");
        var error = await mallory.ReceiveAsync<ErrorFrame>();
        Assert.Equal(sendId, error.RequestId);
        Assert.Equal(ErrorCode.NotMember, error.Code);

        // A tenant boundary is a membership boundary too: alice of tenant t2 is not alice of t1.
        await using var otherTenant = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice", "t2"));
        await otherTenant.SendTextAsync("secret", "cross-tenant");
        Assert.Equal(ErrorCode.NotMember, (await otherTenant.ReceiveAsync<ErrorFrame>()).Code);

        // Nothing was committed.
        await using var alice = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
        await alice.SubscribeAsync(new ChatCursor("secret", 0));
        Assert.Equal(0UL, Assert.Single((await alice.ReceiveAsync<SubscribedFrame>()).Results).HeadSeq);
    }

    [Fact]
    public async Task Retried_send_returns_the_original_seq_and_message_id()
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateChatAsync("general", "alice");
        await using var alice = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));

        await alice.SendTextAsync("general", "first", "cmid-1");
        var first = await alice.ReceiveAsync<SendAckFrame>();
        await alice.SendTextAsync("general", "first", "cmid-1"); // a retry is the same Send (another text would be a conflict)
        var retry = await alice.ReceiveAsync<SendAckFrame>();
        await alice.SendTextAsync("general", "second", "cmid-2");
        var second = await alice.ReceiveAsync<SendAckFrame>();

        Assert.False(first.Duplicate);
        Assert.True(retry.Duplicate);
        Assert.Equal(first.Seq, retry.Seq);
        Assert.Equal(first.MessageId, retry.MessageId);
        Assert.Equal(first.Seq + 1, second.Seq);

        // A retry from a new connection (e.g. after a reconnect) is deduplicated too.
        await using var again = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
        await again.SendTextAsync("general", "first", "cmid-1");
        var third = await again.ReceiveAsync<SendAckFrame>();
        Assert.True(third.Duplicate);
        Assert.Equal(first.MessageId, third.MessageId);
    }

    [Fact]
    public async Task Reconnect_with_cursor_receives_exactly_the_missed_messages_then_live_ones()
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateChatAsync("general", "alice", "bob");
        await using var alice = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));

        ulong bobCursor;
        await using (var bob = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("bob")))
        {
            await bob.SubscribeAsync(new ChatCursor("general", 0));
            await bob.ReceiveAsync<SubscribedFrame>();
            await bob.ReceiveAsync<CaughtUpFrame>();
            for (var i = 1; i <= 3; i++)
            {
                await alice.SendTextAsync("general", $"m{i}");
                await alice.ReceiveAsync<SendAckFrame>();
            }

            var seen = await ReceiveMessagesAsync(bob, "general", 3);
            bobCursor = seen[^1].Seq;
        }

        // Bob is away while four more are committed.
        for (var i = 4; i <= 7; i++)
        {
            await alice.SendTextAsync("general", $"m{i}");
            await alice.ReceiveAsync<SendAckFrame>();
        }

        await using var bobAgain = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("bob"));
        await bobAgain.SubscribeAsync(new ChatCursor("general", bobCursor));
        var subscribed = await bobAgain.ReceiveAsync<SubscribedFrame>();
        Assert.Equal(7UL, subscribed.Results[0].HeadSeq);

        var missed = await ReceiveMessagesAsync(bobAgain, "general", 4);
        Assert.Equal([4UL, 5, 6, 7], missed.Select(m => m.Seq));
        Assert.Equal(["m4", "m5", "m6", "m7"], missed.Select(Text));
        Assert.Equal(new CaughtUpFrame("general", 7), await bobAgain.ReceiveAsync<CaughtUpFrame>());

        await alice.SendTextAsync("general", "m8");
        var live = await bobAgain.ReceiveAsync<MessageFrame>();
        Assert.Equal(8UL, live.Message.Seq);

        // Nothing else is pending: no duplicate replay.
        await alice.SendTextAsync("general", "m9");
        Assert.Equal(9UL, (await bobAgain.ReceiveAsync<MessageFrame>()).Message.Seq);
    }

    [Fact]
    public async Task History_pages_backwards()
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateChatAsync("general", "alice");
        await using var alice = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
        for (var i = 1; i <= 5; i++)
        {
            await alice.SendTextAsync("general", $"m{i}");
            await alice.ReceiveAsync<SendAckFrame>();
        }

        var id = alice.NextRequestId();
        await alice.SendFrameAsync(w => ClientFrameWriter.WriteHistory(w, id, "general", 0, 2));
        var page = await alice.ReceiveAsync<HistoryPageFrame>();
        Assert.Equal(id, page.RequestId);
        Assert.Equal([5UL, 4], page.Messages.Select(m => m.Seq));
        Assert.True(page.HasMore);

        id = alice.NextRequestId();
        await alice.SendFrameAsync(w => ClientFrameWriter.WriteHistory(w, id, "general", 4, 10));
        page = await alice.ReceiveAsync<HistoryPageFrame>();
        Assert.Equal([3UL, 2, 1], page.Messages.Select(m => m.Seq));
        Assert.False(page.HasMore);
    }

    [Fact]
    public async Task Removed_member_stops_receiving_at_once()
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateChatAsync("general", "alice", "bob");
        await using var alice = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
        await using var bob = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("bob"));
        await bob.SubscribeAsync(new ChatCursor("general", 0));
        await bob.ReceiveAsync<SubscribedFrame>();
        await bob.ReceiveAsync<CaughtUpFrame>();

        await alice.SendTextAsync("general", "before");
        Assert.Equal("before", Text((await bob.ReceiveAsync<MessageFrame>()).Message));

        await gw.RemoveMemberAsync("general", "bob");
        var revoked = await bob.ReceiveAsync<RevokedFrame>();
        Assert.Equal("general", revoked.ChatId);
        Assert.Equal(ErrorCode.NotMember, revoked.Code);

        // Messages after the removal never reach bob; his connection stays usable.
        await alice.SendTextAsync("general", "after");
        await alice.ReceiveAsync<SendAckFrame>();
        var sendId = await bob.SendTextAsync("general", "still here?");
        var error = await bob.ReceiveAsync<ErrorFrame>();
        Assert.Equal(sendId, error.RequestId);
        Assert.Equal(ErrorCode.NotMember, error.Code);

        await bob.SubscribeAsync(new ChatCursor("general", 0));
        Assert.Equal(ErrorCode.NotMember, Assert.Single((await bob.ReceiveAsync<SubscribedFrame>()).Results).Code);
    }

    [Fact]
    public async Task Concurrent_senders_and_subscribers_see_every_seq_once_in_order()
    {
        const int senders = 4, perSender = 50, subscribers = 3;
        await using var gw = await TestGateway.StartAsync();
        var members = Enumerable.Range(0, senders).Select(i => $"s{i}").Concat(Enumerable.Range(0, subscribers).Select(i => $"r{i}")).ToArray();
        await gw.CreateChatAsync("busy", members);

        var readers = new List<WsClient>();
        for (var i = 0; i < subscribers; i++)
        {
            var r = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token($"r{i}"));
            await r.SubscribeAsync(new ChatCursor("busy", 0));
            await r.ReceiveAsync<SubscribedFrame>();
            await r.ReceiveAsync<CaughtUpFrame>();
            readers.Add(r);
        }

        var receiving = readers.Select(r => Task.Run(() => ReceiveMessagesAsync(r, "busy", senders * perSender))).ToList();
        var sending = Enumerable.Range(0, senders).Select(i => Task.Run(async () =>
        {
            await using var s = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token($"s{i}"));
            var acked = new List<ulong>();
            for (var j = 0; j < perSender; j++)
            {
                await s.SendTextAsync("busy", $"{i}:{j}", $"s{i}-{j}");
                acked.Add((await s.ReceiveAsync<SendAckFrame>()).Seq);
            }

            return acked;
        })).ToList();

        var allAcked = (await Task.WhenAll(sending).WaitAsync(TimeSpan.FromSeconds(60))).SelectMany(a => a).Order().ToList();
        var expected = Enumerable.Range(1, senders * perSender).Select(i => (ulong)i).ToList();
        Assert.Equal(expected, allAcked);
        foreach (var seen in await Task.WhenAll(receiving).WaitAsync(TimeSpan.FromSeconds(60)))
        {
            Assert.Equal(expected, seen.Select(m => m.Seq));
        }

        foreach (var r in readers)
        {
            await r.DisposeAsync();
        }
    }
}
