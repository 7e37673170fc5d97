using System.Collections.Concurrent;
using System.Text;
using Gateway.Cql.Protocol;
using Gateway.Cql.TestPeer;

namespace Gateway.Cql.Tests;

/// <summary>
/// The client against the CQL test peer (a server test double speaking protocol v4 over real sockets on 127.0.0.N):
/// paging, prepared statements, timeouts, failover, topology events, token- and shard-aware routing, multiplexing,
/// the retry policy, authentication and LWTs. Every await is bounded; nothing asserts on timing.
/// </summary>
public sealed class PeerIntegrationTests
{
    private const byte Prepare = 0x09;
    private const byte Execute = 0x0A;

    /// <summary>The bound of every await: generous, the machine is shared and slow.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private const string Keyspace = "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}";

    private static CqlClusterOptions Options(CqlTestCluster peer, int connectionsPerHost = 1, int maxRequests = 2048, string? username = null, string? password = null) => new()
    {
        ContactPoints = [peer.Nodes[0].Address],
        Port = peer.Port,
        ConnectionsPerHost = connectionsPerHost,
        MaxRequestsPerConnection = maxRequests,
        Username = username,
        Password = password,
        ConnectTimeout = TimeSpan.FromSeconds(20),
        RequestTimeout = TimeSpan.FromSeconds(30),
        ReconnectMaxDelay = TimeSpan.FromSeconds(1),
    };

    private static Task<CqlCluster> ConnectAsync(CqlClusterOptions options) => CqlCluster.ConnectAsync(options).WaitAsync(Bound);

    private static async Task RunAsync(CqlCluster client, params string[] statements)
    {
        foreach (var statement in statements)
        {
            using var _ = await client.QueryAsync(statement).WaitAsync(Bound);
        }
    }

    private static long TextToken(string key) => Murmur3.Token(Encoding.UTF8.GetBytes(key));

    /// <summary>A text partition key whose primary replica is <paramref name="node"/>.</summary>
    private static string KeyOwnedBy(CqlTestCluster peer, CqlTestNode node, string prefix)
    {
        for (var i = 0; i < 100_000; i++)
        {
            var key = $"{prefix}{i}";
            if (peer.PrimaryReplica(TextToken(key)) == node)
            {
                return key;
            }
        }

        throw new InvalidOperationException($"No key owned by {node}");
    }

    private static CqlHost Host(CqlCluster client, CqlTestNode node) => client.Hosts.Single(h => h.Address == node.Address);

    [Fact]
    public async Task Paging_returns_every_row_of_a_partition_once_in_clustering_order()
    {
        await using var peer = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Nodes = 1 }).WaitAsync(Bound);
        await using var client = await ConnectAsync(Options(peer));
        await RunAsync(client, Keyspace, "CREATE TABLE ks.paged (p text, c int, v text, PRIMARY KEY (p, c))");
        var insert = await client.PrepareAsync("INSERT INTO ks.paged (p, c, v) VALUES (?, ?, ?)").WaitAsync(Bound);

        // Written in a shuffled order, so the order read back is the server's clustering order, not ours.
        var order = Enumerable.Range(0, 1000).ToArray();
        new Random(7).Shuffle(order);
        foreach (var chunk in order.Chunk(100))
        {
            var writes = chunk.Select(async c =>
            {
                using var _ = await client.ExecuteAsync(insert, ["p1", c, $"v{c}"]);
            });
            await Task.WhenAll(writes).WaitAsync(Bound);
        }

        var select = await client.PrepareAsync("SELECT c, v FROM ks.paged WHERE p = ?").WaitAsync(Bound);
        foreach (var prepared in new[] { true, false })
        {
            var seen = new List<int>();
            var pages = 0;
            ReadOnlyMemory<byte> state = default;
            do
            {
                var options = new CqlStatementOptions { PageSize = 64, PagingState = state };
                using var page = prepared
                    ? await client.ExecuteAsync(select, ["p1"], options).WaitAsync(Bound)
                    : await client.QueryAsync("SELECT c, v FROM ks.paged WHERE p = ?", ["p1"], options).WaitAsync(Bound);
                var rows = page.Rows!;
                Assert.InRange(rows.Count, 1, 64);
                for (var i = 0; i < rows.Count; i++)
                {
                    var c = rows.GetInt32(i, 0);
                    Assert.Equal($"v{c}", rows.GetString(i, 1));
                    seen.Add(c);
                }

                pages++;
                Assert.True(pages <= 20, "the paging state does not advance");
                state = rows.PagingState;
            }
            while (!state.IsEmpty);

            Assert.Equal(16, pages);
            Assert.Equal(Enumerable.Range(0, 1000), seen);
        }
    }

    [Fact]
    public async Task A_node_that_forgot_a_prepared_statement_gets_it_prepared_again_and_the_execute_succeeds()
    {
        await using var peer = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Nodes = 1 }).WaitAsync(Bound);
        var node = peer.Nodes[0];
        await using var client = await ConnectAsync(Options(peer));
        await RunAsync(client, Keyspace, "CREATE TABLE ks.kv (k text PRIMARY KEY, v text)");

        var insert = await client.PrepareAsync("INSERT INTO ks.kv (k, v) VALUES (?, ?)").WaitAsync(Bound);
        using (var _ = await client.ExecuteAsync(insert, ["a", "1"]).WaitAsync(Bound))
        {
        }

        Assert.Equal(1, node.Requests(Prepare));

        // As after a restart or a cache eviction: the next EXECUTE is answered Unprepared.
        node.ForgetPrepared();
        using (var _ = await client.ExecuteAsync(insert, ["b", "2"]).WaitAsync(Bound))
        {
        }

        Assert.Equal(2, node.Requests(Prepare));
        Assert.Equal(3, node.Requests(Execute));

        // Prepared again, so the next one goes through at once.
        using (var _ = await client.ExecuteAsync(insert, ["c", "3"]).WaitAsync(Bound))
        {
        }

        Assert.Equal((2, 4), (node.Requests(Prepare), node.Requests(Execute)));
        Assert.Equal(["1", "2", "3"], peer.Table("ks", "kv")!.Rows.OrderBy(r => r.Text("k"), StringComparer.Ordinal).Select(r => r.Text("v")));
    }

    [Fact]
    public async Task A_statement_prepared_on_one_node_is_prepared_lazily_on_the_others()
    {
        await using var peer = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Nodes = 3 }).WaitAsync(Bound);
        await using var client = await ConnectAsync(Options(peer));
        await RunAsync(client, Keyspace, "CREATE TABLE ks.kv (k text PRIMARY KEY, v text)");
        var insert = await client.PrepareAsync("INSERT INTO ks.kv (k, v) VALUES (?, ?)").WaitAsync(Bound);

        // Sequential, one key per node: each node answers Unprepared at most once and is prepared once.
        for (var i = 0; i < 30; i++)
        {
            using var _ = await client.ExecuteAsync(insert, [$"k{i}", "v"]).WaitAsync(Bound);
        }

        Assert.Equal(30, peer.Table("ks", "kv")!.Rows.Count);
        Assert.All(peer.Nodes, n => Assert.Equal(1, n.Requests(Prepare)));
    }

    [Fact]
    public async Task A_blackholed_request_times_out_and_the_connection_then_serves_more_requests_than_it_has_stream_ids()
    {
        await using var peer = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Nodes = 1 }).WaitAsync(Bound);
        var node = peer.Nodes[0];
        await using var client = await ConnectAsync(Options(peer, maxRequests: 8));
        await RunAsync(client, Keyspace, "CREATE TABLE ks.kv (k text PRIMARY KEY, v text)");
        var insert = await client.PrepareAsync("INSERT INTO ks.kv (k, v) VALUES (?, ?)").WaitAsync(Bound);
        var connections = node.OpenConnections;

        node.Blackhole = true;
        var quick = new CqlStatementOptions { Timeout = TimeSpan.FromMilliseconds(300) };
        await Assert.ThrowsAsync<CqlTimeoutException>(() => client.ExecuteAsync(insert, ["lost", "1"], quick).WaitAsync(Bound));
        await Assert.ThrowsAsync<CqlTimeoutException>(() => client.QueryAsync("SELECT * FROM ks.kv WHERE k = 'lost'", options: quick).WaitAsync(Bound));

        // Idempotent: tried on the next node, and there is none.
        var none = await Assert.ThrowsAsync<CqlNoHostAvailableException>(() => client.QueryAsync("SELECT * FROM ks.kv", options: quick with { Idempotent = true }).WaitAsync(Bound));
        Assert.IsType<CqlTimeoutException>(none.Errors[node.Address]);
        node.Blackhole = false;

        // Three of the eight ids wait for answers that never come; the others are freed by every answer.
        for (var i = 0; i < 24; i++)
        {
            using var _ = await client.ExecuteAsync(insert, [$"k{i}", "v"]).WaitAsync(Bound);
        }

        Assert.Equal(connections, node.OpenConnections);
        Assert.Equal(24, peer.Table("ks", "kv")!.Rows.Count(r => r.Text("k")!.StartsWith('k')));
    }

    [Fact]
    public async Task A_connection_whose_every_stream_id_timed_out_is_replaced()
    {
        await using var peer = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Nodes = 1 }).WaitAsync(Bound);
        var node = peer.Nodes[0];
        await using var client = await ConnectAsync(Options(peer, maxRequests: 4));
        await RunAsync(client, Keyspace, "CREATE TABLE ks.kv (k text PRIMARY KEY, v text)");

        node.Blackhole = true;
        var quick = new CqlStatementOptions { Timeout = TimeSpan.FromMilliseconds(300) };
        var lost = Enumerable.Range(0, 4).Select(i => client.QueryAsync($"INSERT INTO ks.kv (k, v) VALUES ('lost{i}', 'x')", options: quick)).ToList();
        foreach (var t in lost)
        {
            await Assert.ThrowsAsync<CqlTimeoutException>(() => t.WaitAsync(Bound));
        }

        node.Blackhole = false;

        // The node answers again; the client must not stay stuck on a connection with no usable stream id.
        var ok = false;
        var until = Environment.TickCount64 + (long)Bound.TotalMilliseconds;
        while (!ok && Environment.TickCount64 < until)
        {
            try
            {
                using var _ = await client.QueryAsync("INSERT INTO ks.kv (k, v) VALUES ('back', 'y')").WaitAsync(Bound);
                ok = true;
            }
            catch (CqlNoHostAvailableException)
            {
                await Task.Delay(100);
            }
        }

        Assert.True(ok, "the client never recovered from a connection whose stream ids were all orphaned");
    }

    [Fact]
    public async Task A_node_stopped_mid_request_fails_over_idempotent_requests_only_and_is_used_again_once_back()
    {
        await using var peer = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Nodes = 3 }).WaitAsync(Bound);
        await using var client = await ConnectAsync(Options(peer));
        await RunAsync(client, Keyspace, "CREATE TABLE ks.kv (k text PRIMARY KEY, v text)");
        var insert = await client.PrepareAsync("INSERT INTO ks.kv (k, v) VALUES (?, ?)").WaitAsync(Bound);

        // Not the contact point, so the control connection stays put.
        var owner = peer.Nodes[2];
        var key = KeyOwnedBy(peer, owner, "gone-");
        using (var _ = await client.ExecuteAsync(insert, [key, "warm"]).WaitAsync(Bound))
        {
        }

        Assert.True(owner.Requests(Execute) > 0, "the warm-up went to the replica");

        // Non-idempotent: the node dies with the write on the wire; running it elsewhere could apply it twice.
        var slow = TimeSpan.FromSeconds(30);
        var options = new CqlStatementOptions { Timeout = TimeSpan.FromSeconds(50) };
        owner.ResponseDelay = slow;
        var before = owner.Requests(Execute);
        var write = client.ExecuteAsync(insert, [key, "once"], options);
        await Poll.UntilAsync(() => owner.Requests(Execute) > before, "the write reached its replica");
        await owner.StopAsync().WaitAsync(Bound);
        var failed = await Assert.ThrowsAnyAsync<Exception>(() => write.WaitAsync(Bound));
        Assert.IsType<CqlConnectionException>(failed);
        await Poll.UntilAsync(() => !Host(client, owner).IsUp, "the client marks the stopped node down");

        owner.ResponseDelay = TimeSpan.Zero;
        await owner.StartAsync().WaitAsync(Bound);
        await Poll.UntilAsync(() => Host(client, owner).IsUp, "the client marks the restarted node up");

        // Idempotent: the same loss is retried on the next replica.
        owner.ResponseDelay = slow;
        before = owner.Requests(Execute);
        var others = peer.Nodes.Where(n => n != owner).Sum(n => n.Requests(Execute));
        var retried = client.ExecuteAsync(insert, [key, "twice"], options with { Idempotent = true });
        await Poll.UntilAsync(() => owner.Requests(Execute) > before, "the idempotent write reached its replica");
        await owner.StopAsync().WaitAsync(Bound);
        using (var _ = await retried.WaitAsync(Bound))
        {
        }

        Assert.True(peer.Nodes.Where(n => n != owner).Sum(n => n.Requests(Execute)) > others, "another node ran the retry");
        Assert.Equal("twice", peer.Table("ks", "kv")!.Rows.Single(r => r.Text("k") == key).Text("v"));

        // Back again: the client reconnects and routes the key to its replica again.
        await Poll.UntilAsync(() => !Host(client, owner).IsUp, "the client marks the stopped node down");
        owner.ResponseDelay = TimeSpan.Zero;
        await owner.StartAsync().WaitAsync(Bound);
        await Poll.UntilAsync(() => Host(client, owner).IsUp, "the client marks the restarted node up");
        before = owner.Requests(Execute);
        for (var i = 0; i < 5; i++)
        {
            using var _ = await client.ExecuteAsync(insert, [key, $"again{i}"]).WaitAsync(Bound);
        }

        Assert.True(owner.Requests(Execute) >= before + 5, "the restarted replica serves its keys again");
    }

    [Fact]
    public async Task Added_and_removed_nodes_raise_events_and_change_the_hosts()
    {
        await using var peer = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Nodes = 3 }).WaitAsync(Bound);
        await using var client = await ConnectAsync(Options(peer));
        var events = new ConcurrentQueue<CqlClusterEvent>();
        client.Event += events.Enqueue;
        Assert.Equal(3, client.Hosts.Count);

        var added = await peer.AddNodeAsync().WaitAsync(Bound);
        await Poll.UntilAsync(() => events.Any(e => e.Kind == CqlClusterEventKind.NodeAdded && e.Address == added.Address), "NodeAdded");
        Assert.Equal(4, client.Hosts.Count);
        await Poll.UntilAsync(() => Host(client, added).IsUp, "the new node's pool opens");
        Assert.Equal(added.Tokens.Count, Host(client, added).TokenCount);

        // The new node owns part of the ring now: its keys go to it.
        await RunAsync(client, Keyspace, "CREATE TABLE ks.kv (k text PRIMARY KEY, v text)");
        var insert = await client.PrepareAsync("INSERT INTO ks.kv (k, v) VALUES (?, ?)").WaitAsync(Bound);
        using (var _ = await client.ExecuteAsync(insert, [KeyOwnedBy(peer, added, "new-"), "v"]).WaitAsync(Bound))
        {
        }

        Assert.Contains(added.Log, r => r.Opcode == Execute && r.IsReplica == true);

        await peer.RemoveNodeAsync(added).WaitAsync(Bound);
        await Poll.UntilAsync(() => events.Any(e => e.Kind == CqlClusterEventKind.NodeRemoved && e.Address == added.Address), "NodeRemoved");
        Assert.Equal(3, client.Hosts.Count);
        Assert.DoesNotContain(client.Hosts, h => h.Address == added.Address);

        // Its keys go to the remaining replicas.
        using (var _ = await client.ExecuteAsync(insert, [KeyOwnedBy(peer, peer.Nodes[1], "old-"), "v"]).WaitAsync(Bound))
        {
        }
    }

    [Theory]
    [InlineData(0, false)]
    [InlineData(4, true)]
    [InlineData(4, false)]
    public async Task Token_aware_routing_sends_every_execute_to_its_primary_replica_and_owning_shard(int shards, bool shardAwarePort)
    {
        await using var peer = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Nodes = 3, Shards = shards, ShardAwarePort = shardAwarePort }).WaitAsync(Bound);
        await using var client = await ConnectAsync(Options(peer));
        await RunAsync(
            client,
            Keyspace,
            "CREATE TABLE ks.single (k text PRIMARY KEY, v int)",
            "CREATE TABLE ks.composite (a text, b int, c int, v int, PRIMARY KEY ((a, b), c))");
        var single = await client.PrepareAsync("INSERT INTO ks.single (k, v) VALUES (?, ?)").WaitAsync(Bound);

        // Markers out of partition key order: the routing key must follow the partition key, not the markers.
        var composite = await client.PrepareAsync("INSERT INTO ks.composite (c, b, v, a) VALUES (?, ?, ?, ?)").WaitAsync(Bound);
        foreach (var n in peer.Nodes)
        {
            n.ClearLog();
        }

        await Task.WhenAll(Enumerable.Range(0, 300).Select(async i =>
        {
            using var _ = await client.ExecuteAsync(single, [$"user-{i}", i]);
        })).WaitAsync(Bound);
        await Task.WhenAll(Enumerable.Range(0, 300).Select(async i =>
        {
            using var _ = await client.ExecuteAsync(composite, [i % 7, i, i, $"tenant-{i % 13}"]);
        })).WaitAsync(Bound);

        Assert.Equal(300, peer.Table("ks", "single")!.Rows.Count);
        Assert.Equal(300, peer.Table("ks", "composite")!.Rows.Count);

        // EXECUTEs answered Unprepared (first use on a node) carry no token; every other one names its partition.
        var executes = peer.Nodes.SelectMany(n => n.Log.Where(r => r.Opcode == Execute && r.Token is not null).Select(r => (Node: n, Request: r))).ToList();
        Assert.Equal(600, executes.Count);
        Assert.All(executes, e => Assert.True(e.Request.IsReplica, $"{e.Request.Query} token {e.Request.Token} went to {e.Node}, not {peer.PrimaryReplica(e.Request.Token!.Value)}"));
        Assert.All(peer.Nodes, n => Assert.Contains(executes, e => e.Node == n));
        if (shards > 0)
        {
            Assert.All(executes, e => Assert.True(e.Request.Shard == e.Request.TokenShard, $"token {e.Request.Token} (shard {e.Request.TokenShard}) came on a connection to shard {e.Request.Shard}"));
            Assert.All(client.Hosts, h => Assert.Equal(shards, h.ShardCount));
            Assert.Equal(Enumerable.Range(0, shards), executes.Select(e => e.Request.Shard).Distinct().Order());
        }
    }

    [Fact]
    public async Task Two_thousand_concurrent_requests_share_one_connection()
    {
        await using var peer = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Nodes = 1 }).WaitAsync(Bound);
        var node = peer.Nodes[0];
        await using var client = await ConnectAsync(Options(peer, connectionsPerHost: 1));
        await RunAsync(client, Keyspace, "CREATE TABLE ks.kv (k text PRIMARY KEY, v int)");
        var insert = await client.PrepareAsync("INSERT INTO ks.kv (k, v) VALUES (?, ?)").WaitAsync(Bound);
        node.ClearLog();

        // A short delay keeps answers outstanding while the rest are sent; it asserts nothing about time.
        node.ResponseDelay = TimeSpan.FromMilliseconds(20);
        await Task.WhenAll(Enumerable.Range(0, 2000).Select(async i =>
        {
            using var _ = await client.ExecuteAsync(insert, [$"k{i}", i]);
        })).WaitAsync(Bound);
        node.ResponseDelay = TimeSpan.Zero;

        Assert.Equal(2000, peer.Table("ks", "kv")!.Rows.Count);
        Assert.Equal(2000, node.Requests(Execute));
        Assert.True(node.MaxInFlightPerConnection > 1, $"at most {node.MaxInFlightPerConnection} request(s) in flight on a connection");

        // The control connection and one pooled connection: nothing more was opened to absorb the load.
        Assert.Equal(2, node.OpenConnections);
        Assert.True(node.Log.Select(r => r.Stream).Distinct().Count() > 1);
    }

    [Fact]
    public async Task The_retry_policy_against_injected_errors()
    {
        await using var peer = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Nodes = 3 }).WaitAsync(Bound);
        await using var client = await ConnectAsync(Options(peer));
        await RunAsync(client, Keyspace, "CREATE TABLE ks.kv (k text PRIMARY KEY, v text)");
        var insert = await client.PrepareAsync("INSERT INTO ks.kv (k, v) VALUES (?, ?)").WaitAsync(Bound);
        var owner = peer.Nodes[1];
        var key = KeyOwnedBy(peer, owner, "retry-");
        foreach (var n in peer.Nodes)
        {
            using var _ = await client.ExecuteAsync(insert, [KeyOwnedBy(peer, n, "warm-"), "w"]).WaitAsync(Bound);
        }

        long Others() => peer.Nodes.Where(n => n != owner).Sum(n => n.Requests(Execute));

        // Overloaded: nothing ran, so even a non-idempotent write goes to the next host.
        owner.FailNext(0x1001);
        var others = Others();
        using (var _ = await client.ExecuteAsync(insert, [key, "overloaded"]).WaitAsync(Bound))
        {
        }

        Assert.Equal(others + 1, Others());
        Assert.Equal("overloaded", peer.Table("ks", "kv")!.Rows.Single(r => r.Text("k") == key).Text("v"));

        // WriteTimeout on a non-idempotent write: it may have been applied, so it surfaces with its details.
        owner.FailNext(0x1100);
        var e = await Assert.ThrowsAsync<CqlServerException>(() => client.ExecuteAsync(insert, [key, "timeout"]).WaitAsync(Bound));
        Assert.Equal((CqlErrorCode.WriteTimeout, "SIMPLE", owner.Address), (e.Code, e.WriteType, e.Host));
        Assert.Equal(CqlConsistency.LocalQuorum, e.Consistency);

        // The same for a batch, whose write type says so.
        owner.FailNext(0x1100);
        var batch = new CqlBatch().Add(insert, key, "b1").Add(insert, key, "b2");
        var b = await Assert.ThrowsAsync<CqlServerException>(() => client.BatchAsync(batch).WaitAsync(Bound));
        Assert.Equal((CqlErrorCode.WriteTimeout, "BATCH"), (b.Code, b.WriteType));

        // Idempotent: retried on the next host.
        owner.FailNext(0x1100);
        others = Others();
        using (var _ = await client.ExecuteAsync(insert, [key, "idempotent"], new CqlStatementOptions { Idempotent = true }).WaitAsync(Bound))
        {
        }

        Assert.Equal(others + 1, Others());
        Assert.Equal("idempotent", peer.Table("ks", "kv")!.Rows.Single(r => r.Text("k") == key).Text("v"));
    }

    [Fact]
    public async Task Password_authentication_accepts_the_right_credentials_and_names_wrong_ones()
    {
        await using var peer = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Nodes = 2, Username = "gateway", Password = "s3cret" }).WaitAsync(Bound);
        await using (var client = await ConnectAsync(Options(peer, username: "gateway", password: "s3cret")))
        {
            Assert.All(client.Hosts, h => Assert.True(h.IsUp));
            await RunAsync(client, Keyspace, "CREATE TABLE ks.kv (k text PRIMARY KEY, v text)", "INSERT INTO ks.kv (k, v) VALUES ('a', 'b')");
            using var read = await client.QueryAsync("SELECT v FROM ks.kv WHERE k = 'a'").WaitAsync(Bound);
            Assert.Equal("b", read.Rows!.GetString(0, 0));
        }

        var wrong = await Assert.ThrowsAsync<CqlNoHostAvailableException>(() => ConnectAsync(Options(peer, username: "gateway", password: "nope")));
        var bad = Assert.IsType<CqlServerException>(wrong.Errors[peer.Nodes[0].Address]);
        Assert.Equal(CqlErrorCode.BadCredentials, bad.Code);
        Assert.Contains("BadCredentials", wrong.Message, StringComparison.Ordinal);

        var anonymous = await Assert.ThrowsAsync<CqlNoHostAvailableException>(() => ConnectAsync(Options(peer)));
        Assert.Contains("Username is not set", anonymous.Errors[peer.Nodes[0].Address].Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Lightweight_transactions_report_whether_they_applied()
    {
        await using var peer = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Nodes = 3 }).WaitAsync(Bound);
        await using var client = await ConnectAsync(Options(peer));
        await RunAsync(client, Keyspace, "CREATE TABLE ks.kv (k text PRIMARY KEY, v text)");
        var claim = await client.PrepareAsync("INSERT INTO ks.kv (k, v) VALUES (?, ?) IF NOT EXISTS").WaitAsync(Bound);

        using (var first = await client.ExecuteAsync(claim, ["lock", "me"]).WaitAsync(Bound))
        {
            Assert.True(first.Applied);
        }

        using (var second = await client.ExecuteAsync(claim, ["lock", "you"]).WaitAsync(Bound))
        {
            Assert.False(second.Applied);
            var rows = second.Rows!;
            Assert.Equal("me", rows.GetString(0, rows.IndexOf("v")));
        }

        using (var plain = await client.QueryAsync("INSERT INTO ks.kv (k, v) VALUES ('lock', 'them') IF NOT EXISTS").WaitAsync(Bound))
        {
            Assert.False(plain.Applied);
        }

        var swap = await client.PrepareAsync("UPDATE ks.kv SET v = ? WHERE k = ? IF v = ?").WaitAsync(Bound);
        using (var stale = await client.ExecuteAsync(swap, ["x", "lock", "you"]).WaitAsync(Bound))
        {
            Assert.False(stale.Applied);
        }

        using (var fresh = await client.ExecuteAsync(swap, ["x", "lock", "me"]).WaitAsync(Bound))
        {
            Assert.True(fresh.Applied);
        }

        Assert.Equal("x", peer.Table("ks", "kv")!.Rows.Single().Text("v"));
    }
}
