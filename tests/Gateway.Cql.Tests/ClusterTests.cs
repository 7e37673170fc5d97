using System.Collections.Concurrent;
using System.Net;
using Gateway.Cql.Protocol;

namespace Gateway.Cql.Tests;

/// <summary>The cluster against scripted loopback nodes: discovery, routing, retries, reconnection, events.</summary>
public sealed class ClusterTests
{
    private static CqlClusterOptions Options(ScriptedCqlServer contact, Action<CqlClusterOptionsBuilder>? tweak = null)
    {
        var b = new CqlClusterOptionsBuilder { ContactPoints = [contact.Address] };
        tweak?.Invoke(b);
        return b.Build();
    }

    private static byte[] Prepared(byte[] id, CqlTypeCode pkType) => TestWire.Body(b =>
    {
        b.WriteInt(4);
        b.WriteShortBytes(id);
        b.WriteInt(1);
        b.WriteInt(1);
        b.WriteInt(1);
        b.WriteShort(0);
        b.WriteString("ks");
        b.WriteString("t");
        b.WriteString("k");
        b.WriteShort((ushort)pkType);
        b.WriteInt(4);
        b.WriteInt(0);
    });

    private static (ScriptedCqlServer A, ScriptedCqlServer B) TwoNodes(string tokenA = "0", string tokenB = "-5000000000000000000")
    {
        var a = new ScriptedCqlServer { Tokens = [tokenA] };
        var b = new ScriptedCqlServer { Tokens = [tokenB] };
        a.Peers.Add((IPAddress.Loopback, b.Port, [tokenB]));
        b.Peers.Add((IPAddress.Loopback, a.Port, [tokenA]));
        return (a, b);
    }

    [Fact]
    public async Task Connect_discovers_the_peers_and_runs_a_query()
    {
        var (a, b) = TwoNodes();
        await using (a)
        await using (b)
        {
            await using var cluster = await CqlCluster.ConnectAsync(Options(a));
            Assert.Equal(2, cluster.Hosts.Count);
            Assert.All(cluster.Hosts, h => Assert.True(h.IsUp));
            Assert.All(cluster.Hosts, h => Assert.Equal(("dc1", 1), (h.Datacenter, h.TokenCount)));
            using var result = await cluster.QueryAsync("SELECT now() FROM system.local");
            Assert.Equal(CqlResultKind.Void, result.Kind);
            Assert.Contains(a.Received, r => r.Opcode == CqlOpcode.Register);
        }
    }

    [Fact]
    public async Task No_reachable_contact_point_fails_with_no_host_available()
    {
        var server = new ScriptedCqlServer();
        var address = server.Address;
        await server.DisposeAsync();
        var e = await Assert.ThrowsAsync<CqlNoHostAvailableException>(() => CqlCluster.ConnectAsync(new CqlClusterOptions { ContactPoints = [address], ConnectTimeout = TimeSpan.FromSeconds(1) }));
        Assert.True(e.Errors.ContainsKey(address));
    }

    [Fact]
    public async Task Overloaded_moves_to_the_next_host_and_all_hosts_failing_lists_each_error()
    {
        var (a, b) = TwoNodes();
        await using (a)
        await using (b)
        {
            a.Handler = (c, r) => c.ReplyAsync(r, CqlOpcode.Error, TestWire.Error(CqlErrorCode.Overloaded, "busy"));
            await using var cluster = await CqlCluster.ConnectAsync(Options(a));
            for (var i = 0; i < 4; i++)
            {
                using var ok = await cluster.QueryAsync("INSERT");
            }

            b.Handler = (c, r) => c.ReplyAsync(r, CqlOpcode.Error, TestWire.Error(CqlErrorCode.IsBootstrapping, "starting"));
            var e = await Assert.ThrowsAsync<CqlNoHostAvailableException>(() => cluster.QueryAsync("INSERT"));
            Assert.Equal(2, e.Errors.Count);
        }
    }

    [Fact]
    public async Task Write_timeout_is_retried_elsewhere_only_for_idempotent_statements()
    {
        var (a, b) = TwoNodes();
        await using (a)
        await using (b)
        {
            var timeout = TestWire.Error(CqlErrorCode.WriteTimeout, "slow", w =>
            {
                w.WriteConsistency(CqlConsistency.Quorum);
                w.WriteInt(1);
                w.WriteInt(2);
                w.WriteString("SIMPLE");
            });
            var tries = 0;
            Task Fail(ServerConnection c, ServerRequest r)
            {
                Interlocked.Increment(ref tries);
                return c.ReplyAsync(r, CqlOpcode.Error, timeout);
            }

            a.Handler = Fail;
            b.Handler = Fail;
            await using var cluster = await CqlCluster.ConnectAsync(Options(a));
            var once = await Assert.ThrowsAsync<CqlServerException>(() => cluster.QueryAsync("UPDATE"));
            Assert.Equal((CqlErrorCode.WriteTimeout, "SIMPLE", 1), (once.Code, once.WriteType, tries));

            tries = 0;
            await Assert.ThrowsAsync<CqlNoHostAvailableException>(() => cluster.QueryAsync("UPDATE", options: new CqlStatementOptions { Idempotent = true }));
            Assert.Equal(2, tries);
        }
    }

    [Fact]
    public async Task Unprepared_is_answered_by_preparing_again_on_that_node_and_retrying_once()
    {
        await using var server = new ScriptedCqlServer();
        var id = new byte[] { 7, 7 };
        var prepares = 0;
        var known = true;
        server.Handler = async (c, r) =>
        {
            switch (r.Opcode)
            {
                case CqlOpcode.Prepare:
                    Interlocked.Increment(ref prepares);
                    known = true;
                    await c.ReplyAsync(r, CqlOpcode.Result, Prepared(id, CqlTypeCode.Bigint));
                    break;
                case CqlOpcode.Execute when !known:
                    await c.ReplyAsync(r, CqlOpcode.Error, TestWire.Error(CqlErrorCode.Unprepared, "unknown", w => w.WriteShortBytes(id)));
                    break;
                default:
                    await c.ReplyAsync(r, CqlOpcode.Result, TestWire.Void());
                    break;
            }
        };
        await using var cluster = await CqlCluster.ConnectAsync(Options(server));
        var prepared = await cluster.PrepareAsync("SELECT * FROM ks.t WHERE k = ?");
        Assert.Equal([0], prepared.PartitionKeyIndexes);

        known = false;
        using var result = await cluster.ExecuteAsync(prepared, [42L]);
        Assert.Equal(CqlResultKind.Void, result.Kind);
        Assert.Equal(2, prepares);
        Assert.Equal(2, server.Received.Count(r => r.Opcode == CqlOpcode.Execute));

        var e = await Assert.ThrowsAsync<ArgumentException>(() => cluster.ExecuteAsync(prepared, [CqlValue.Text("not a bigint")]));
        Assert.Contains("k", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Execute_goes_to_the_replica_that_owns_the_partition_token()
    {
        // "test" hashes to -6017608668500074083 (owned by B's -5e18, the first token at or above it); 0xFF×17 hashes
        // to -4128212798341382003 (owned by A's 0).
        var (a, b) = TwoNodes();
        await using (a)
        await using (b)
        {
            var id = new byte[] { 1 };
            Task Answer(ServerConnection c, ServerRequest r) =>
                c.ReplyAsync(r, CqlOpcode.Result, r.Opcode == CqlOpcode.Prepare ? Prepared(id, CqlTypeCode.Blob) : TestWire.Void());
            a.Handler = Answer;
            b.Handler = Answer;
            await using var cluster = await CqlCluster.ConnectAsync(Options(a));
            var prepared = await cluster.PrepareAsync("SELECT * FROM ks.t WHERE k = ?");
            for (var i = 0; i < 5; i++)
            {
                using var toB = await cluster.ExecuteAsync(prepared, [CqlValue.Blob("test"u8.ToArray())]);
                using var toA = await cluster.ExecuteAsync(prepared, [CqlValue.Blob(Enumerable.Repeat((byte)0xFF, 17).ToArray())]);
            }

            Assert.Equal(5, a.Received.Count(r => r.Opcode == CqlOpcode.Execute));
            Assert.Equal(5, b.Received.Count(r => r.Opcode == CqlOpcode.Execute));
        }
    }

    [Fact]
    public async Task A_sharded_node_gets_a_connection_per_shard_and_requests_go_to_the_owning_shard()
    {
        await using var server = new ScriptedCqlServer(shards: 3) { Tokens = ["0"] };
        var wrongShard = 0;
        var executes = 0;
        server.Handler = async (c, r) =>
        {
            if (r.Opcode == CqlOpcode.Prepare)
            {
                await c.ReplyAsync(r, CqlOpcode.Result, Prepared([9], CqlTypeCode.Blob));
                return;
            }

            if (r.Opcode == CqlOpcode.Execute)
            {
                // The 6-byte key sits before the page size [int] and serial consistency [short]: its token picks the shard.
                var key = r.Body.AsSpan(r.Body.Length - 2 - 4 - 6, 6).ToArray();
                Interlocked.Increment(ref executes);
                if (ScyllaSharding.ShardOf(Murmur3.Token(key), 3, 12) != c.Shard)
                {
                    Interlocked.Increment(ref wrongShard);
                }
            }

            await c.ReplyAsync(r, CqlOpcode.Result, TestWire.Void());
        };
        await using var cluster = await CqlCluster.ConnectAsync(Options(server, o => o.ConnectionsPerHost = 1));
        Assert.Equal(3, cluster.Hosts[0].ShardCount);
        var prepared = await cluster.PrepareAsync("SELECT * FROM ks.t WHERE k = ?");
        for (var i = 0; i < 60; i++)
        {
            using var _ = await cluster.ExecuteAsync(prepared, [CqlValue.Blob(System.Text.Encoding.ASCII.GetBytes($"key{i:D3}"))], new CqlStatementOptions { PageSize = 10, SerialConsistency = CqlConsistency.Serial });
        }

        Assert.Equal(60, executes);
        Assert.Equal(0, wrongShard);
    }

    [Fact]
    public async Task With_a_shard_aware_port_each_shard_is_reached_by_choosing_the_source_port()
    {
        await using var server = new ScriptedCqlServer(shards: 4, shardAwarePort: true);
        await using var cluster = await CqlCluster.ConnectAsync(Options(server));
        Assert.Equal(4, cluster.Hosts[0].ShardCount);

        // The first pool connection lands on the plain port (shard chosen by the node); the other three shards come
        // through the shard-aware port, each on its first try.
        Assert.Equal(3, server.AcceptedOnShardAwarePort);
        Assert.Equal([0, 1, 2, 3], server.Connections.Where(c => c.Shard >= 0).Skip(1).Select(c => c.Shard).Order());
    }

    [Fact]
    public async Task A_node_whose_connections_drop_is_marked_down_and_reconnected_with_backoff()
    {
        await using var server = new ScriptedCqlServer();
        await using var cluster = await CqlCluster.ConnectAsync(Options(server, o =>
        {
            o.ReconnectBaseDelay = TimeSpan.FromMilliseconds(50);
            o.ReconnectMaxDelay = TimeSpan.FromMilliseconds(400);
        }));
        Assert.True(cluster.Hosts[0].IsUp);

        server.RefuseHandshake = true;
        var acceptedBefore = server.Accepted;
        server.DropAll();
        await Poll.UntilAsync(() => !cluster.Hosts[0].IsUp, "the node to be marked down");
        var requestWhileDown = await Assert.ThrowsAsync<CqlNoHostAvailableException>(() => cluster.QueryAsync("SELECT 1"));
        Assert.Empty(requestWhileDown.Errors);

        // 1.5 s of refused handshakes: with doubling delays (50, 100, 200, 400, 400 ms ± jitter) that is a handful of
        // attempts for the pool and as many for the control connection, not hundreds.
        await Task.Delay(1500);
        var attempts = server.Accepted - acceptedBefore;
        Assert.InRange(attempts, 2, 24);

        server.RefuseHandshake = false;
        await Poll.UntilAsync(() => cluster.Hosts[0].IsUp, "the node to come back up");
        using var result = await cluster.QueryAsync("SELECT 1");
        Assert.Equal(CqlResultKind.Void, result.Kind);
    }

    [Fact]
    public async Task Requests_in_flight_on_a_node_reported_down_fail_as_lost_connections_and_idempotent_ones_move_on()
    {
        // "test" hashes to a token owned by B; B holds its EXECUTEs, then A pushes STATUS_CHANGE DOWN for B while they
        // are in flight (a node can be reported down by gossip before its connections to us break).
        var (a, b) = TwoNodes();
        await using (a)
        await using (b)
        {
            var id = new byte[] { 1 };
            var held = new ConcurrentQueue<ServerRequest>();
            a.Handler = (c, r) => c.ReplyAsync(r, CqlOpcode.Result, r.Opcode == CqlOpcode.Prepare ? Prepared(id, CqlTypeCode.Blob) : TestWire.Void());
            b.Handler = (c, r) =>
            {
                if (r.Opcode == CqlOpcode.Execute)
                {
                    held.Enqueue(r);
                    return Task.CompletedTask;
                }

                return c.ReplyAsync(r, CqlOpcode.Result, r.Opcode == CqlOpcode.Prepare ? Prepared(id, CqlTypeCode.Blob) : TestWire.Void());
            };
            await using var cluster = await CqlCluster.ConnectAsync(Options(a, o => o.ReconnectBaseDelay = TimeSpan.FromSeconds(5)));
            var prepared = await cluster.PrepareAsync("SELECT * FROM ks.t WHERE k = ?");
            var key = CqlValue.Blob("test"u8.ToArray());
            var once = cluster.ExecuteAsync(prepared, [key]);
            var retried = cluster.ExecuteAsync(prepared, [key], new CqlStatementOptions { Idempotent = true });
            await Poll.UntilAsync(() => held.Count == 2, "both requests at B");

            await a.BroadcastAsync(TestWire.Frame(CqlOpcode.Event, -1, TestWire.Body(w =>
            {
                w.WriteString("STATUS_CHANGE");
                w.WriteString("DOWN");
                w.WriteByte(4);
                w.WriteRaw([127, 0, 0, 1]);
                w.WriteInt(b.Port);
            })));

            await Assert.ThrowsAsync<CqlConnectionException>(() => once.WaitAsync(TimeSpan.FromSeconds(30)));
            using var result = await retried.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(CqlResultKind.Void, result.Kind);
            Assert.Contains(a.Received, r => r.Opcode == CqlOpcode.Execute);
        }
    }

    [Fact]
    public void Backoff_doubles_with_jitter_within_the_configured_bounds()
    {
        var baseDelay = TimeSpan.FromMilliseconds(100);
        var max = TimeSpan.FromSeconds(2);
        for (var attempt = 0; attempt < 12; attempt++)
        {
            var d = CqlCluster.Backoff(attempt, baseDelay, max);
            Assert.InRange(d, baseDelay, max);
            var nominal = Math.Min(100 * Math.Pow(2, attempt), 2000);
            Assert.InRange(d.TotalMilliseconds, Math.Max(100, nominal * 0.75) - 0.001, Math.Min(2000, nominal * 1.25) + 0.001);
        }
    }

    [Fact]
    public async Task Pushed_events_update_the_hosts_and_are_raised()
    {
        var (a, b) = TwoNodes();
        await using (a)
        await using (b)
        await using (var c = new ScriptedCqlServer { Tokens = ["5000000000000000000"] })
        {
            await using var cluster = await CqlCluster.ConnectAsync(Options(a, o => o.ReconnectBaseDelay = TimeSpan.FromSeconds(5)));
            var events = new ConcurrentQueue<(CqlClusterEvent Event, bool? UpThen, int HostsThen)>();
            cluster.Event += e => events.Enqueue((e, cluster.Hosts.FirstOrDefault(h => h.Address == e.Address)?.IsUp, cluster.Hosts.Count));

            byte[] Event(string type, string change, int port) => TestWire.Frame(CqlOpcode.Event, -1, TestWire.Body(w =>
            {
                w.WriteString(type);
                w.WriteString(change);
                w.WriteByte(4);
                w.WriteRaw([127, 0, 0, 1]);
                w.WriteInt(port);
            }));

            await a.BroadcastAsync(Event("STATUS_CHANGE", "DOWN", b.Port));
            await Poll.UntilAsync(() => events.Count == 1, "the DOWN event");
            var down = events.Single();
            Assert.Equal((CqlClusterEventKind.NodeDown, $"127.0.0.1:{b.Port}", (bool?)false), (down.Event.Kind, down.Event.Address, down.UpThen));

            await a.BroadcastAsync(Event("STATUS_CHANGE", "UP", b.Port));
            await Poll.UntilAsync(() => events.Count == 2, "the UP event");
            await Poll.UntilAsync(() => cluster.Hosts.Single(h => h.Address == $"127.0.0.1:{b.Port}").IsUp, "B back up");

            a.Peers.Add((IPAddress.Loopback, c.Port, c.Tokens));
            await a.BroadcastAsync(Event("TOPOLOGY_CHANGE", "NEW_NODE", c.Port));
            await Poll.UntilAsync(() => events.Count == 3, "the NEW_NODE event");
            Assert.Equal((CqlClusterEventKind.NodeAdded, 3), (events.Last().Event.Kind, events.Last().HostsThen));
            Assert.Equal(1, cluster.Hosts.Single(h => h.Address == $"127.0.0.1:{c.Port}").TokenCount);

            a.Peers.RemoveAt(a.Peers.Count - 1);
            await a.BroadcastAsync(Event("TOPOLOGY_CHANGE", "REMOVED_NODE", c.Port));
            await Poll.UntilAsync(() => events.Count == 4, "the REMOVED_NODE event");
            Assert.Equal((CqlClusterEventKind.NodeRemoved, 2), (events.Last().Event.Kind, events.Last().HostsThen));

            await a.BroadcastAsync(TestWire.Frame(CqlOpcode.Event, -1, TestWire.Body(w =>
            {
                w.WriteString("SCHEMA_CHANGE");
                w.WriteString("CREATED");
                w.WriteString("TABLE");
                w.WriteString("ks");
                w.WriteString("t2");
            })));
            await Poll.UntilAsync(() => events.Count == 5, "the SCHEMA_CHANGE event");
            Assert.Equal(new CqlSchemaChange("CREATED", "TABLE", "ks", "t2", null), events.Last().Event.SchemaChange);
        }
    }
}

/// <summary>CqlClusterOptions is init-only; tests tweak a mutable copy and build it.</summary>
internal sealed class CqlClusterOptionsBuilder
{
    public IList<string> ContactPoints { get; set; } = [];

    public int ConnectionsPerHost { get; set; } = 1;

    public TimeSpan ReconnectBaseDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    public TimeSpan ReconnectMaxDelay { get; set; } = TimeSpan.FromSeconds(10);

    public CqlClusterOptions Build() => new()
    {
        ContactPoints = ContactPoints,
        ConnectionsPerHost = ConnectionsPerHost,
        ReconnectBaseDelay = ReconnectBaseDelay,
        ReconnectMaxDelay = ReconnectMaxDelay,
        ConnectTimeout = TimeSpan.FromSeconds(2),
        RequestTimeout = TimeSpan.FromSeconds(5),
    };
}
