using Gateway.Protocol;

namespace Gateway.Server.Tests;

/// <summary>The catch-up algorithm under pressure: long histories and subscribes racing live traffic.</summary>
public sealed class CatchUpTests
{
    /// <summary>These tests load one user on purpose; the per-user send limit is not what they test.</summary>
    private static readonly string[] Unlimited =
        ["--Gateway:SendsPerSecond=1000000", "--Gateway:SendBurst=1000000", "--Gateway:SubscribesPerSecond=1000000", "--Gateway:SubscribeBurst=1000000"];

    private static async Task<List<ulong>> ReceiveSeqsUntilAsync(WsClient client, string chatId, ulong last, Action<ServerFrame>? onOther = null)
    {
        var seqs = new List<ulong>();
        while (seqs.Count == 0 || seqs[^1] < last)
        {
            var frame = await client.ReceiveAsync(TimeSpan.FromSeconds(30)) ?? throw new Xunit.Sdk.XunitException("closed");
            if (frame is MessageFrame m && m.ChatId == chatId)
            {
                seqs.Add(m.Message.Seq);
            }
            else
            {
                onOther?.Invoke(frame);
            }
        }

        return seqs;
    }

    [Fact]
    public async Task History_longer_than_pages_and_the_outbound_queue_replays_in_order()
    {
        // 3,000 messages: 30 catch-up pages, and three times the 1,024-frame outbound queue, so catch-up has to
        // wait for the writer instead of overflowing into a slow-consumer close.
        const int n = 3000;
        await using var gw = await TestGateway.StartAsync(null, Unlimited);
        await gw.CreateChatAsync("long", "alice", "bob");
        await using (var alice = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice")))
        {
            var pending = 0;
            for (var i = 0; i < n; i++)
            {
                await alice.SendTextAsync("long", $"m{i}");
                if (++pending == 50)
                {
                    for (; pending > 0; pending--)
                    {
                        await alice.ReceiveAsync<SendAckFrame>();
                    }
                }
            }

            for (; pending > 0; pending--)
            {
                await alice.ReceiveAsync<SendAckFrame>();
            }
        }

        await using var bob = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("bob"));
        await bob.SubscribeAsync(new ChatCursor("long", 0));
        Assert.Equal((ulong)n, (await bob.ReceiveAsync<SubscribedFrame>()).Results[0].HeadSeq);
        var seqs = await ReceiveSeqsUntilAsync(bob, "long", n);
        Assert.Equal(Enumerable.Range(1, n).Select(i => (ulong)i), seqs);
        Assert.Equal(new CaughtUpFrame("long", n), await bob.ReceiveAsync<CaughtUpFrame>());
    }

    [Fact]
    public async Task Subscribing_while_messages_stream_in_misses_and_repeats_nothing()
    {
        // A sender commits continuously; subscribers join at different moments from different cursors. Each must
        // see every seq after its cursor exactly once, in order, across the switch from history to live.
        const int total = 600;
        await using var gw = await TestGateway.StartAsync(null, Unlimited);
        await gw.CreateChatAsync("stream", "alice", "r0", "r1", "r2", "r3");

        var sending = Task.Run(async () =>
        {
            await using var alice = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
            for (var i = 0; i < total; i++)
            {
                await alice.SendTextAsync("stream", $"m{i}");
                if (i % 10 == 9)
                {
                    for (var k = 0; k < 10; k++)
                    {
                        await alice.ReceiveAsync<SendAckFrame>();
                    }
                }
            }
        });

        var subscribers = Enumerable.Range(0, 4).Select(r => Task.Run(async () =>
        {
            // Join after roughly r * 100 commits, from a cursor somewhere behind the head.
            await using var probe = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token($"r{r}"));
            ulong head;
            do
            {
                await probe.SubscribeAsync(new ChatCursor("stream", ulong.MaxValue - 1));
                head = (await probe.ReceiveAsync<SubscribedFrame>()).Results[0].HeadSeq;
                await probe.ReceiveAsync<CaughtUpFrame>();
            }
            while (head < (ulong)(r * 100) && !sending.IsCompleted);

            var cursor = head / 2;
            await using var client = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token($"r{r}"));
            await client.SubscribeAsync(new ChatCursor("stream", cursor));
            var caughtUp = 0;
            var seqs = await ReceiveSeqsUntilAsync(client, "stream", total, f => caughtUp += f is CaughtUpFrame ? 1 : 0);
            return (cursor, seqs, caughtUp);
        })).ToList();

        await sending.WaitAsync(TimeSpan.FromSeconds(90));
        foreach (var (cursor, seqs, caughtUp) in await Task.WhenAll(subscribers).WaitAsync(TimeSpan.FromSeconds(90)))
        {
            Assert.Equal(Enumerable.Range((int)cursor + 1, total - (int)cursor).Select(i => (ulong)i), seqs);
            Assert.True(caughtUp <= 1);
        }
    }

    [Fact]
    public async Task A_cursor_beyond_the_head_is_answered_with_the_servers_position()
    {
        // A client that has seen seq 10 of a chat whose store only has 2 (e.g. the server was restored from an
        // older backup) learns it from CaughtUp, and is not sent seqs it claims to have.
        await using var gw = await TestGateway.StartAsync(null, Unlimited);
        await gw.CreateChatAsync("general", "alice");
        await using var alice = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
        await alice.SendTextAsync("general", "one");
        await alice.ReceiveAsync<SendAckFrame>();
        await alice.SendTextAsync("general", "two");
        await alice.ReceiveAsync<SendAckFrame>();

        await alice.SubscribeAsync(new ChatCursor("general", 10));
        Assert.Equal(2UL, (await alice.ReceiveAsync<SubscribedFrame>()).Results[0].HeadSeq);
        Assert.Equal(new CaughtUpFrame("general", 2), await alice.ReceiveAsync<CaughtUpFrame>());
    }
}
