using System.Collections.Concurrent;
using Gateway.Protocol;
using Microsoft.Extensions.DependencyInjection;
using NATS.Client.Core;

namespace Gateway.Nats.Tests;

/// <summary>
/// Gateways and writers as separate hosts (each with its own Kestrel listeners) over a real nats-server with JetStream.
/// </summary>
public sealed class DistributedTests
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Clients_on_two_gateways_chat_in_both_directions()
    {
        await using var deployment = await TwoGateways.StartAsync();
        var (gatewayA, gatewayB) = (deployment.GatewayA, deployment.GatewayB);

        await using var alice = await WsClient.ConnectAsync(gatewayA.WebSocketUri, RoleHost.Token("alice"));
        await using var bob = await WsClient.ConnectAsync(gatewayB.WebSocketUri, RoleHost.Token("bob"));
        Assert.Equal(ErrorCode.None, (await alice.SubscribeAsync("c1")).Code);
        Assert.Equal(ErrorCode.None, (await bob.SubscribeAsync("c1")).Code);

        var ack = Assert.IsType<SendAckFrame>(await alice.SendAndAckAsync("c1", "hello from A"));
        Assert.Equal(1UL, ack.Seq);
        var atBob = await bob.ReceiveUntilAsync("c1", 1, Within);
        Assert.Equal("hello from A", System.Text.Encoding.UTF8.GetString(atBob.Single().Content.Span));
        Assert.Equal("alice", atBob.Single().SenderId);

        ack = Assert.IsType<SendAckFrame>(await bob.SendAndAckAsync("c1", "hello from B"));
        Assert.Equal(2UL, ack.Seq);
        // (Alice's own message 1 may have gone by while she waited for her ack.)
        var atAlice = await alice.ReceiveUntilAsync("c1", 2, Within);
        Assert.Equal(2UL, atAlice[^1].Seq);
        Assert.Equal("bob", atAlice[^1].SenderId);
    }

    [Fact]
    public async Task A_client_resumes_on_another_gateway_from_its_cursor_without_gaps_or_duplicates()
    {
        await using var deployment = await TwoGateways.StartAsync();
        var (gatewayA, gatewayB) = (deployment.GatewayA, deployment.GatewayB);
        await using var alice = await WsClient.ConnectAsync(gatewayA.WebSocketUri, RoleHost.Token("alice"));

        ulong cursor;
        {
            await using var bob = await WsClient.ConnectAsync(gatewayA.WebSocketUri, RoleHost.Token("bob"));
            await bob.SubscribeAsync("c1");
            for (var i = 1; i <= 5; i++)
            {
                Assert.IsType<SendAckFrame>(await alice.SendAndAckAsync("c1", $"m{i}"));
            }

            cursor = (await bob.ReceiveUntilAsync("c1", 5, Within))[^1].Seq;
        }

        // Bob is gone; the chat moves on.
        for (var i = 6; i <= 40; i++)
        {
            Assert.IsType<SendAckFrame>(await alice.SendAndAckAsync("c1", $"m{i}"));
        }

        await using var bobAgain = await WsClient.ConnectAsync(gatewayB.WebSocketUri, RoleHost.Token("bob"));
        var result = await bobAgain.SubscribeAsync("c1", cursor);
        Assert.Equal(ErrorCode.None, result.Code);

        // Live sends continue while Bob catches up on B.
        var live = Task.Run(async () =>
        {
            for (var i = 41; i <= 60; i++)
            {
                Assert.IsType<SendAckFrame>(await alice.SendAndAckAsync("c1", $"m{i}"));
            }
        });
        var received = await bobAgain.ReceiveUntilAsync("c1", 60, Within);
        await live;
        Frames.AssertDense(received.Select(m => m.Seq), cursor + 1, 60);
        Assert.Equal(received.Select(m => $"m{m.Seq}"), received.Select(m => System.Text.Encoding.UTF8.GetString(m.Content.Span)));
    }

    [Fact]
    public async Task Two_writers_racing_on_one_chat_keep_seq_dense_and_ack_each_send_exactly_once()
    {
        await using var nats = await NatsServer.StartAsync();
        await using var writer1 = await RoleHost.StartWriterAsync(nats.Url, "w1");
        await using var writer2 = await RoleHost.StartWriterAsync(nats.Url, "w2");
        await writer1.CreateChatAsync("race", "alice", "bob");

        const int PerWriter = 60;
        var acks = new ConcurrentBag<(string Key, ulong Seq, bool Duplicate)>();
        async Task Drive(RoleHost host, string prefix)
        {
            for (var i = 0; i < PerWriter; i++)
            {
                var key = $"{prefix}-{i}";
                var (status, seq, duplicate) = await host.SendHttpAsync("race", i % 2 == 0 ? "alice" : "bob", key, key);
                Assert.True(status == 201, $"send {key} answered {status}: {host.LastError}");
                acks.Add((key, seq, duplicate));
            }
        }

        // Four concurrent senders, two on each writer, all on one chat.
        await Task.WhenAll(Drive(writer1, "a"), Drive(writer2, "b"), Drive(writer1, "c"), Drive(writer2, "d")).WaitAsync(TimeSpan.FromSeconds(120));

        Assert.Equal(4 * PerWriter, acks.Count);
        Assert.DoesNotContain(acks, a => a.Duplicate);
        Frames.AssertDense(acks.Select(a => a.Seq).Order(), 1, 4 * PerWriter);

        // A retry of an acknowledged send, on the OTHER writer, returns the original: exactly one message per key.
        var original = acks.First(a => a.Key == "a-7");
        var retry = await writer2.SendHttpAsync("race", "bob", "a-7", "a-7");
        Assert.Equal((200, original.Seq, true), retry);

        // The log holds exactly those messages, in seq order, with their keys.
        await using var gateway = await RoleHost.StartGatewayAsync(nats.Url);
        await using var reader = await WsClient.ConnectAsync(gateway.WebSocketUri, RoleHost.Token("alice"));
        await reader.SubscribeAsync("race");
        var all = await reader.ReceiveUntilAsync("race", 4 * PerWriter, Within);
        Frames.AssertDense(all.Select(m => m.Seq), 1, 4 * PerWriter);
        Assert.Equal(acks.OrderBy(a => a.Seq).Select(a => a.Key), all.Select(m => System.Text.Encoding.UTF8.GetString(m.Content.Span)));
    }

    [Fact]
    public async Task Removing_a_member_through_gateway_A_revokes_the_live_subscription_held_on_gateway_B()
    {
        await using var deployment = await TwoGateways.StartAsync();
        var (gatewayA, gatewayB) = (deployment.GatewayA, deployment.GatewayB);
        await using var bob = await WsClient.ConnectAsync(gatewayB.WebSocketUri, RoleHost.Token("bob"));
        Assert.Equal(ErrorCode.None, (await bob.SubscribeAsync("c1")).Code);

        await gatewayA.RemoveMemberAsync("c1", "bob");

        RevokedFrame? revoked = null;
        var deadline = DateTime.UtcNow + Within;
        while (revoked is null && DateTime.UtcNow < deadline)
        {
            revoked = await bob.ReceiveAsync(Within) as RevokedFrame;
        }

        Assert.NotNull(revoked);
        Assert.Equal(("c1", ErrorCode.NotMember), (revoked.ChatId, revoked.Code));

        // And nothing of the chat reaches Bob afterwards, nor can he subscribe again (on either gateway).
        await using var alice = await WsClient.ConnectAsync(gatewayA.WebSocketUri, RoleHost.Token("alice"));
        Assert.IsType<SendAckFrame>(await alice.SendAndAckAsync("c1", "after removal"));
        Assert.Equal(ErrorCode.NotMember, (await bob.SubscribeAsync("c1")).Code);
        var refusedSend = Assert.IsType<ErrorFrame>(await bob.SendAndAckAsync("c1", "still here?"));
        Assert.Equal(ErrorCode.NotMember, refusedSend.Code);
    }

    [Fact]
    public async Task Killing_nats_server_mid_stream_loses_no_acknowledged_message_and_sends_fail_fast_meanwhile()
    {
        await using var nats = await NatsServer.StartAsync();
        await using var writer = await RoleHost.StartWriterAsync(nats.Url, "w1", null, "--Nats:CommandDeadlineMs=3000", "--Nats:RequestTimeoutMs=1000");
        await using var gateway = await RoleHost.StartGatewayAsync(nats.Url, "--Nats:CommandDeadlineMs=3000", "--Nats:RequestTimeoutMs=1000");
        await gateway.CreateChatAsync("c1", "alice", "bob");
        await using var alice = await WsClient.ConnectAsync(gateway.WebSocketUri, RoleHost.Token("alice"));
        await using var bob = await WsClient.ConnectAsync(gateway.WebSocketUri, RoleHost.Token("bob"));
        await bob.SubscribeAsync("c1");

        var acked = new List<ulong>();
        for (var i = 0; i < 10; i++)
        {
            acked.Add(Assert.IsType<SendAckFrame>(await alice.SendAndAckAsync("c1", $"before-{i}")).Seq);
        }

        nats.Kill();

        // During the outage a send fails with a retryable error (Unavailable), within the command deadline.
        var failure = await alice.SendAndAckAsync("c1", "during", "during-key").WaitAsync(TimeSpan.FromSeconds(20));
        var error = Assert.IsType<ErrorFrame>(failure);
        Assert.Equal(ErrorCode.Unavailable, error.Code);

        // So does a Subscribe to a chat this gateway does not watch yet: Unavailable for that chat, not a stuck request.
        await using var dave = await WsClient.ConnectAsync(gateway.WebSocketUri, RoleHost.Token("alice"));
        var subscribeDuringOutage = await dave.SubscribeAsync("c2").WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(ErrorCode.Unavailable, subscribeDuringOutage.Code);

        await nats.RestartAsync();

        // Once NATS is back, the same key is retried (as a client would) and the chat goes on.
        var retried = await RetryUntilAckedAsync(alice, "c1", "during", "during-key");
        acked.Add(retried.Seq);
        for (var i = 0; i < 10; i++)
        {
            acked.Add((await RetryUntilAckedAsync(alice, "c1", $"after-{i}", $"after-key-{i}")).Seq);
        }

        Frames.AssertDense(acked, 1, 21);

        // Bob stayed connected through the outage: every acknowledged message reaches him, once, in order.
        var received = await bob.ReceiveUntilAsync("c1", acked[^1], TimeSpan.FromSeconds(60));
        Frames.AssertDense(received.Select(m => m.Seq), 1, acked[^1]);

        // A client that resumes from its cursor after the outage gets the rest too.
        await using var carol = await WsClient.ConnectAsync(gateway.WebSocketUri, RoleHost.Token("bob"));
        var resumed = await carol.SubscribeAsync("c1", 5);
        Assert.True(resumed.Code == ErrorCode.None, $"resume after the outage answered {resumed.Code}");
        Frames.AssertDense((await carol.ReceiveUntilAsync("c1", acked[^1], Within)).Select(m => m.Seq), 6, acked[^1]);
    }

    [Fact]
    public async Task A_three_node_cluster_with_replicas_3_keeps_sending_and_delivering_after_losing_a_node()
    {
        var cluster = await NatsServer.StartClusterAsync();
        try
        {
            var urls = string.Join(',', cluster.Select(s => s.Url));
            await using var writer = await StartWhenClusterReadyAsync(() => RoleHost.StartWriterAsync(urls, "w1", null, "--Nats:Replicas=3"));
            await using var gatewayA = await RoleHost.StartGatewayAsync(urls);
            await using var gatewayB = await RoleHost.StartGatewayAsync(urls);
            await gatewayA.CreateChatAsync("c1", "alice", "bob");
            await using var alice = await WsClient.ConnectAsync(gatewayA.WebSocketUri, RoleHost.Token("alice"));
            await using var bob = await WsClient.ConnectAsync(gatewayB.WebSocketUri, RoleHost.Token("bob"));
            await bob.SubscribeAsync("c1");
            for (var i = 0; i < 5; i++)
            {
                Assert.IsType<SendAckFrame>(await alice.SendAndAckAsync("c1", $"m{i}"));
            }

            await bob.ReceiveUntilAsync("c1", 5, Within);

            // Lose the first node: the one every client connected to first (NATS.Net picks the first URL).
            cluster[0].Kill();

            var seqs = new List<ulong>();
            for (var i = 0; i < 10; i++)
            {
                seqs.Add((await RetryUntilAckedAsync(alice, "c1", $"after-{i}", $"k-{i}")).Seq);
            }

            Frames.AssertDense(seqs, 6, 15);
            var received = await bob.ReceiveUntilAsync("c1", 15, TimeSpan.FromSeconds(60));
            Assert.Equal(15UL, received[^1].Seq);
        }
        finally
        {
            foreach (var s in cluster)
            {
                await s.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Two_writers_racing_on_one_chat_of_a_replicated_stream_never_store_two_messages_under_one_seq()
    {
        // On a clustered stream nats-server 2.9 lets concurrent appends with the same expected subject sequence all be
        // stored; the writers' event-number claims (Nats-Msg-Id) are what keeps one message per seq.
        var cluster = await NatsServer.StartClusterAsync();
        try
        {
            var urls = string.Join(',', cluster.Select(s => s.Url));
            await using var writer1 = await StartWhenClusterReadyAsync(() => RoleHost.StartWriterAsync(urls, "w1", null, "--Nats:Replicas=3"));
            await using var writer2 = await RoleHost.StartWriterAsync(string.Join(',', cluster.Reverse().Select(s => s.Url)), "w2", null, "--Nats:Replicas=3");
            await writer1.CreateChatAsync("race", "alice", "bob");

            const int PerSender = 30;
            var acks = new ConcurrentBag<(string Key, ulong Seq)>();
            async Task Drive(RoleHost host, string prefix)
            {
                for (var i = 0; i < PerSender; i++)
                {
                    var key = $"{prefix}-{i}";
                    var (status, seq, _) = await host.SendHttpAsync("race", "alice", key, key);
                    Assert.True(status == 201, $"send {key} answered {status}: {host.LastError}");
                    acks.Add((key, seq));
                }
            }

            await Task.WhenAll(Drive(writer1, "a"), Drive(writer2, "b"), Drive(writer1, "c"), Drive(writer2, "d")).WaitAsync(TimeSpan.FromSeconds(120));
            Frames.AssertDense(acks.Select(a => a.Seq).Order(), 1, 4 * PerSender);

            // The log itself: every MessageCreated of the chat, in stream order, carries the next seq and an acked key.
            await using var connection = new NatsConnection(new NatsOpts { Url = urls });
            var subjects = new Subjects(16, 16);
            var log = new JetStreamLog(connection, subjects, new NatsOptions { Url = urls }, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
            var js = new NATS.Client.JetStream.NatsJSContext(connection);
            var last = (await js.GetStreamAsync(subjects.StreamName(0))).Info.State.LastSeq;
            var inLog = new List<(ulong Seq, string Key)>();
            for (ulong seq = 1; seq <= last; seq++)
            {
                var data = await log.GetAsync(subjects.StreamName(0), seq, CancellationToken.None);
                if (data is not null && WireCodec.DecodeEvent(new System.Buffers.ReadOnlySequence<byte>(data)).Message is { ChatId: "race" } m)
                {
                    inLog.Add((m.Seq, m.ClientMessageId));
                }
            }

            Assert.Equal(Enumerable.Range(1, 4 * PerSender).Select(i => (ulong)i), inLog.Select(e => e.Seq));
            Assert.Equal(acks.OrderBy(a => a.Seq).Select(a => a.Key), inLog.Select(e => e.Key));
        }
        finally
        {
            foreach (var s in cluster)
            {
                await s.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Typing_on_gateway_A_reaches_a_subscriber_on_gateway_B_and_not_the_typer()
    {
        await using var deployment = await TwoGateways.StartAsync();
        var (gatewayA, gatewayB) = (deployment.GatewayA, deployment.GatewayB);
        await using var alice = await WsClient.ConnectAsync(gatewayA.WebSocketUri, RoleHost.Token("alice"));
        await using var bob = await WsClient.ConnectAsync(gatewayB.WebSocketUri, RoleHost.Token("bob"));
        await alice.SubscribeAsync("c1");
        await bob.SubscribeAsync("c1");
        await alice.ReceiveAsync<CaughtUpFrame>();
        await bob.ReceiveAsync<CaughtUpFrame>();

        await alice.SendFrameAsync(w => ClientFrameWriter.WriteTyping(w, alice.NextRequestId(), "c1"));
        var typing = await bob.ReceiveAsync<UserTypingFrame>(Within);
        Assert.Equal(("c1", "alice"), (typing.ChatId, typing.UserId));

        // The typer's own gateway delivered it to nobody else; Alice's next frame is her message's ack, not a typing notice.
        var ack = await alice.SendAndAckAsync("c1", "done typing", other: f => Assert.IsNotType<UserTypingFrame>(f));
        Assert.IsType<SendAckFrame>(ack);
    }

    [Fact]
    public void Distributed_roles_refuse_to_start_without_a_NATS_url_and_name_the_setting()
    {
        var e = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() => Gateway.Server.GatewayHost.Build(["--role", "gateway"]));
        Assert.Contains("Nats:Url", e.Message);
        e = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() => Gateway.Server.GatewayHost.Build(["--role", "pod"]));
        Assert.Contains("all, gateway, writer", e.Message);
        e = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() =>
            Gateway.Server.GatewayHost.Build(["--role", "writer", "--Nats:Url=nats://127.0.0.1:1", "--Nats:Partitions=10", "--Nats:PartitionsPerStream=3"]));
        Assert.Contains("PartitionsPerStream", e.Message);
    }

    [Fact]
    public async Task Only_events_JetStream_stored_reach_the_live_subjects_gateways_listen_to()
    {
        // A writer that loses the compare-and-set still PUBLISHED to the chat's log subject; core subscribers of that
        // subject would see it. Gateways listen to the stream's republish instead, which carries stored events only.
        await using var nats = await NatsServer.StartAsync();
        await using var writer = await RoleHost.StartWriterAsync(nats.Url, "w1");
        await writer.CreateChatAsync("c1", "alice");
        var subjects = writer.Services.GetRequiredService<Subjects>();
        var log = writer.Services.GetRequiredService<JetStreamLog>();
        await using var probe = new NatsConnection(NatsOpts.Default with { Url = nats.Url });
        await using var live = await probe.SubscribeCoreAsync<byte[]>(Subjects.LivePrefix + ">");
        await probe.PingAsync();

        var e = new LogEvent(LogEventKind.MembersAdded, "probe", 0, null, "t1", "c1", null, ["mallory"]);
        var rejected = await log.AppendAsync(subjects.Log("t1", "c1"), WireCodec.EncodeEvent(e), expectedLastSubjectSeq: 999, msgId: null, CancellationToken.None);
        Assert.Equal(PublishStatus.WrongLastSequence, rejected.Status);
        var (last, _) = await log.GetLastAsync(subjects.StreamOf("t1", "c1"), subjects.Log("t1", "c1"), CancellationToken.None);
        var stored = await log.AppendAsync(subjects.Log("t1", "c1"), WireCodec.EncodeEvent(e with { EventId = "stored" }), last, msgId: null, CancellationToken.None);
        Assert.Equal(PublishStatus.Stored, stored.Status);

        using var cts = new CancellationTokenSource(Within);
        var first = await live.Msgs.ReadAsync(cts.Token);
        Assert.Equal("stored", WireCodec.DecodeEvent(new System.Buffers.ReadOnlySequence<byte>(first.Data!)).EventId);
    }

    private static async Task<SendAckFrame> RetryUntilAckedAsync(WsClient client, string chatId, string text, string key)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var frame = await client.SendAndAckAsync(chatId, text, key);
            if (frame is SendAckFrame ack)
            {
                return ack;
            }

            var error = Assert.IsType<ErrorFrame>(frame);
            Assert.True(error.Code is ErrorCode.Unavailable or ErrorCode.RateLimited, $"unexpected {error.Code}: {error.Message}");
            Assert.True(DateTime.UtcNow < deadline, "never acknowledged");
            await Task.Delay(200);
        }
    }

    private static async Task<T> StartWhenClusterReadyAsync<T>(Func<Task<T>> start)
    {
        // A fresh cluster needs a few seconds to elect its JetStream meta leader; until then stream creation fails.
        var deadline = DateTime.UtcNow.AddSeconds(45);
        while (true)
        {
            try
            {
                return await start();
            }
            catch (Exception) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(500);
            }
        }
    }
}
