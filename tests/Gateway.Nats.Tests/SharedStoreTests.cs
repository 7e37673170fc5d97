using System.Text;
using Gateway.Cql;
using Gateway.Cql.TestPeer;
using Gateway.Protocol;
using Gateway.Storage.Scylla;

namespace Gateway.Nats.Tests;

/// <summary>
/// Distributed mode on the shared store: writers project the log once into one keyspace (here on the CQL test peer, a
/// three-node test double of Scylla speaking the native protocol over real sockets), and every writer reads from it.
/// </summary>
public sealed class SharedStoreTests
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task When_the_projecting_writer_stops_the_other_takes_the_lease_and_a_client_resumes_on_another_gateway_without_loss_or_duplicates()
    {
        await using var peer = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Nodes = 3 });
        var (keyspace, store) = await NewKeyspaceAsync(peer);
        await using var nats = await NatsServer.StartAsync();
        var w1 = await RoleHost.StartWriterAsync(nats.Url, "w1", null, store);
        var w2 = await RoleHost.StartWriterAsync(nats.Url, "w2", null, store);
        await using var gatewayA = await RoleHost.StartGatewayAsync(nats.Url);
        await using var gatewayB = await RoleHost.StartGatewayAsync(nats.Url);
        try
        {
            await gatewayA.CreateChatAsync("c1", "alice", "bob");
            await using var alice = await WsClient.ConnectAsync(gatewayA.WebSocketUri, RoleHost.Token("alice"));
            ulong cursor;
            {
                await using var bob = await WsClient.ConnectAsync(gatewayA.WebSocketUri, RoleHost.Token("bob"));
                await bob.SubscribeAsync("c1");
                for (var i = 1; i <= 20; i++)
                {
                    Assert.IsType<SendAckFrame>(await alice.SendAndAckAsync("c1", $"m{i}"));
                }

                cursor = (await bob.ReceiveUntilAsync("c1", 20, Within))[^1].Seq;
            }

            // Exactly one writer holds the lease of the (single) stream; stop that one.
            var holder = await LeaseHolderAsync(peer, keyspace, null);
            var (stopped, survivor) = holder.StartsWith("w1/", StringComparison.Ordinal) ? (w1, "w2/") : (w2, "w1/");
            await stopped.DisposeAsync();
            if (ReferenceEquals(stopped, w1))
            {
                w1 = null!;
            }
            else
            {
                w2 = null!;
            }

            Assert.StartsWith(survivor, await LeaseHolderAsync(peer, keyspace, survivor));
            for (var i = 21; i <= 40; i++)
            {
                Assert.IsType<SendAckFrame>(await alice.SendAndAckAsync("c1", $"m{i}"));
            }

            // Bob resumes on the other gateway from his cursor: catch-up reads the shared store through the survivor.
            await using var bobAgain = await WsClient.ConnectAsync(gatewayB.WebSocketUri, RoleHost.Token("bob"));
            Assert.Equal(ErrorCode.None, (await bobAgain.SubscribeAsync("c1", cursor)).Code);
            var received = await bobAgain.ReceiveUntilAsync("c1", 40, Within);
            Frames.AssertDense(received.Select(m => m.Seq), cursor + 1, 40);
            Assert.Equal(received.Select(m => $"m{m.Seq}"), received.Select(m => Encoding.UTF8.GetString(m.Content.Span)));

            // Every message is in the shared keyspace once: 40 rows, one per seq.
            var rows = peer.Table(keyspace, "messages")!.Rows;
            Assert.Equal(Enumerable.Range(1, 40).Select(i => (long)i), rows.Select(r => System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(r.Key["seq"])).Order());
        }
        finally
        {
            if (w1 is not null)
            {
                await w1.DisposeAsync();
            }

            if (w2 is not null)
            {
                await w2.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_writer_that_joins_late_serves_the_whole_history_without_replaying_the_log()
    {
        await using var peer = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Nodes = 1 });
        var (keyspace, store) = await NewKeyspaceAsync(peer);
        await using var nats = await NatsServer.StartAsync();
        var w1 = await RoleHost.StartWriterAsync(nats.Url, "w1", null, store);
        await using var gateway = await RoleHost.StartGatewayAsync(nats.Url);
        await gateway.CreateChatAsync("c1", "alice", "bob");
        await using (var alice = await WsClient.ConnectAsync(gateway.WebSocketUri, RoleHost.Token("alice")))
        {
            for (var i = 1; i <= 30; i++)
            {
                Assert.IsType<SendAckFrame>(await alice.SendAndAckAsync("c1", $"m{i}"));
            }
        }

        await LeaseHolderAsync(peer, keyspace, "w1/");
        await ProjectedAsync(peer, keyspace, 30);
        peer.Nodes[0].ClearLog();
        await using var w2 = await RoleHost.StartWriterAsync(nats.Url, "w2", null, store);
        await w1.DisposeAsync();
        await LeaseHolderAsync(peer, keyspace, "w2/");

        await using var bob = await WsClient.ConnectAsync(gateway.WebSocketUri, RoleHost.Token("bob"));
        Assert.Equal(ErrorCode.None, (await bob.SubscribeAsync("c1", 0)).Code);
        var received = await bob.ReceiveUntilAsync("c1", 30, Within);
        Frames.AssertDense(received.Select(m => m.Seq), 1, 30);

        // The newcomer read the checkpoint and wrote no message: nothing of the log was projected twice.
        var inserts = peer.Nodes[0].Log.Count(r => r.Opcode != 0x09 /* PREPARE */ && r.Query?.StartsWith($"INSERT INTO {keyspace}.messages", StringComparison.Ordinal) == true);
        Assert.Equal(0, inserts);
    }

    [Fact]
    public async Task With_every_Scylla_node_down_sends_are_answered_unavailable_and_work_again_when_they_return()
    {
        await using var peer = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Nodes = 1 });
        var (_, store) = await NewKeyspaceAsync(peer);
        await using var nats = await NatsServer.StartAsync();
        await using var writer = await RoleHost.StartWriterAsync(nats.Url, "w1", null, [.. store, "--Store:RequestTimeoutMs=500", "--Nats:CommandDeadlineMs=3000"]);
        await using var gateway = await RoleHost.StartGatewayAsync(nats.Url, "--Nats:CommandDeadlineMs=3000");
        await gateway.CreateChatAsync("c1", "alice", "bob");
        Assert.Equal(201, (await gateway.SendHttpAsync("c1", "alice", "k-1", "before")).Status);

        await peer.Nodes[0].StopAsync();
        var (status, _, _) = await gateway.SendHttpAsync("c1", "alice", "k-2", "during");
        Assert.Equal(503, status);
        Assert.Contains("Unavailable", gateway.LastError, StringComparison.Ordinal);

        await peer.Nodes[0].StartAsync();
        var deadline = DateTime.UtcNow + Within;
        (int Status, ulong Seq, bool Duplicate) retry;
        while ((retry = await gateway.SendHttpAsync("c1", "alice", "k-2", "during")).Status != 201)
        {
            Assert.True(DateTime.UtcNow < deadline, $"still {retry.Status} after the store came back: {gateway.LastError}");
            await Task.Delay(250);
        }

        Assert.Equal(2UL, retry.Seq);
    }

    private static async Task<(string Keyspace, string[] Args)> NewKeyspaceAsync(CqlTestCluster peer)
    {
        var options = new ScyllaStoreOptions
        {
            ContactPoints = string.Join(',', peer.ContactPoints),
            Keyspace = "d" + Guid.NewGuid().ToString("N")[..20],
            Replication = "{'class': 'SimpleStrategy', 'replication_factor': 3}",
        };
        await using (var cluster = await CqlCluster.ConnectAsync(ScyllaChatStore.ClusterOptions(options)))
        {
            await ScyllaSchema.ApplyAsync(cluster, options);
        }

        return (options.Keyspace, ["--Store:Kind=scylla", $"--Store:ContactPoints={options.ContactPoints}", $"--Store:Keyspace={options.Keyspace}", "--Store:ProjectionLeaseMs=2000"]);
    }

    /// <summary>Waits until <paramref name="messages"/> messages are stored and the checkpoint covers their batches (each
    /// message's write timestamp is the checkpoint of the batch that wrote it).</summary>
    private static async Task ProjectedAsync(CqlTestCluster peer, string keyspace, int messages)
    {
        var deadline = DateTime.UtcNow + Within;
        while (true)
        {
            var rows = peer.Table(keyspace, "messages")?.Rows ?? [];
            var checkpoint = peer.Table(keyspace, "projection_checkpoints")?.Rows.Select(r => r.Bigint("position") ?? 0).DefaultIfEmpty(0).Max() ?? 0;
            if (rows.Count == messages && rows.All(r => r.WriteTime("content") <= checkpoint))
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, $"{rows.Count} of {messages} messages projected, checkpoint {checkpoint}");
            await Task.Delay(50);
        }
    }

    /// <summary>The owner of the projection lease (waits until there is one, and when <paramref name="prefix"/> is given,
    /// until it starts with it).</summary>
    private static async Task<string> LeaseHolderAsync(CqlTestCluster peer, string keyspace, string? prefix)
    {
        var deadline = DateTime.UtcNow + Within;
        while (true)
        {
            var owners = peer.Table(keyspace, "projection_leases")?.Rows.Select(r => r.Text("owner")).OfType<string>().ToList() ?? [];
            if (owners.Count == 1 && (prefix is null || owners[0].StartsWith(prefix, StringComparison.Ordinal)))
            {
                return owners[0];
            }

            Assert.True(DateTime.UtcNow < deadline, $"lease owners: [{string.Join(", ", owners)}], waiting for {prefix ?? "one"}");
            await Task.Delay(100);
        }
    }
}
