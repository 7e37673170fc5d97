using System.Net;

namespace Gateway.Cql.TestPeer.Tests;

public sealed class ClusterTests
{
    private static async Task<RawClient> RegisteredAsync(CqlTestNode node)
    {
        var c = await RawClient.ConnectAsync(node);
        var ready = await c.RequestAsync(0x0B,
            new BodyWriter().StringList("TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE").ToArray());
        Assert.Equal(0x02, ready.Opcode);
        return c;
    }

    private static (string Type, string Change, IPAddress Ip) ReadNodeEvent(Frame f)
    {
        Assert.Equal(0x0C, f.Opcode);
        var r = f.Reader();
        var type = r.String();
        var change = r.String();
        return (type, change, r.Inet().Ip);
    }

    [Fact]
    public async Task Nodes_share_one_port_on_distinct_loopback_addresses()
    {
        await using var cluster = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Nodes = 3 });
        Assert.Equal([$"127.0.0.1:{cluster.Port}", $"127.0.0.2:{cluster.Port}", $"127.0.0.3:{cluster.Port}"], cluster.ContactPoints);
        await using var c = await RawClient.ConnectAsync(cluster.Nodes[1]);
        var peers = await c.RowsAsync("SELECT peer, rpc_address, tokens FROM system.peers");
        Assert.Equal(2, peers.Count);
        Assert.DoesNotContain(peers, p => new IPAddress(p[0]!).Equals(IPAddress.Parse("127.0.0.2")));
        var local = await c.RowsAsync("SELECT rpc_address, partitioner, data_center FROM system.local WHERE key = 'local'");
        Assert.Equal(IPAddress.Parse("127.0.0.2"), new IPAddress(local[0][0]!));
        Assert.Equal("org.apache.cassandra.dht.Murmur3Partitioner", V.AsText(local[0][1]));
        Assert.Equal("dc1", V.AsText(local[0][2]));
        // Tokens are deterministic for the same options.
        await using var again = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Nodes = 3 });
        Assert.Equal(cluster.Nodes[2].Tokens, again.Nodes[2].Tokens);
        Assert.Equal(8, cluster.Nodes[0].Tokens.Count);
    }

    [Fact]
    public async Task Stop_and_start_push_down_and_up_to_other_nodes()
    {
        await using var cluster = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Nodes = 2 });
        var (first, second) = (cluster.Nodes[0], cluster.Nodes[1]);
        await using var events = await RegisteredAsync(second);
        await using var victim = await RawClient.ConnectAsync(first);
        await first.StopAsync();
        Assert.Equal(("STATUS_CHANGE", "DOWN", first.Ip), ReadNodeEvent(await events.EventAsync()));
        Assert.Null(await victim.ReadAsync());
        await Assert.ThrowsAnyAsync<Exception>(() => RawClient.ConnectAsync(first));
        await first.StartAsync();
        Assert.Equal(("STATUS_CHANGE", "UP", first.Ip), ReadNodeEvent(await events.EventAsync()));
        await using var back = await RawClient.ConnectAsync(first);
        Assert.Single(await back.RowsAsync("SELECT key FROM system.local"));
    }

    [Fact]
    public async Task Added_and_removed_nodes_are_announced_and_listed()
    {
        await using var cluster = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Nodes = 2 });
        await using var events = await RegisteredAsync(cluster.Nodes[0]);
        var added = await cluster.AddNodeAsync();
        Assert.Equal(IPAddress.Parse("127.0.0.3"), added.Ip);
        Assert.Equal(("TOPOLOGY_CHANGE", "NEW_NODE", added.Ip), ReadNodeEvent(await events.EventAsync()));
        Assert.Equal(2, (await events.RowsAsync("SELECT peer FROM system.peers")).Count);
        await using (var c = await RawClient.ConnectAsync(added))
        {
            Assert.Single(await c.RowsAsync("SELECT key FROM system.local"));
        }

        await cluster.RemoveNodeAsync(added);
        Assert.Equal(("TOPOLOGY_CHANGE", "REMOVED_NODE", added.Ip), ReadNodeEvent(await events.EventAsync()));
        Assert.Single(await events.RowsAsync("SELECT peer FROM system.peers"));
    }

    [Fact]
    public async Task Ddl_pushes_schema_change_events()
    {
        await using var cluster = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Nodes = 2 });
        await using var events = await RegisteredAsync(cluster.Nodes[1]);
        await using var c = await RawClient.ConnectAsync(cluster.Nodes[0]);
        var created = await c.QueryAsync("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
        var r = created.Reader();
        Assert.Equal(5, r.Int());
        Assert.Equal(("CREATED", "KEYSPACE", "ks"), (r.String(), r.String(), r.String()));
        var e = (await events.EventAsync()).Reader();
        Assert.Equal(("SCHEMA_CHANGE", "CREATED", "KEYSPACE", "ks"), (e.String(), e.String(), e.String(), e.String()));
        await cluster.Nodes[1].PushSchemaChange("UPDATED", "TABLE", "ks", "t");
        var pushed = (await events.EventAsync()).Reader();
        Assert.Equal(("SCHEMA_CHANGE", "UPDATED", "TABLE", "ks", "t"), (pushed.String(), pushed.String(), pushed.String(), pushed.String(), pushed.String()));
    }

    [Fact]
    public async Task Shard_aware_port_assigns_shard_by_source_port()
    {
        await using var cluster = await CqlTestCluster.StartAsync(
            new CqlTestClusterOptions { Shards = 4, ShardAwarePort = true });
        var node = cluster.Nodes[0];
        Assert.NotNull(node.ShardAwarePort);
        Assert.Equal(4, node.ShardCount);
        for (var i = 0; i < 3; i++)
        {
            await using var c = await RawClient.ConnectAsync(node.Ip, node.ShardAwarePort!.Value);
            var options = (await c.RequestAsync(0x05, [])).Reader().Multimap();
            Assert.Equal(c.LocalEndPoint.Port % 4, int.Parse(options["SCYLLA_SHARD"][0]));
            Assert.Equal(["4"], options["SCYLLA_NR_SHARDS"]);
            Assert.Equal(["biased-token-round-robin"], options["SCYLLA_SHARDING_ALGORITHM"]);
            Assert.Equal(["12"], options["SCYLLA_SHARDING_IGNORE_MSB"]);
            Assert.Equal([node.ShardAwarePort.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)], options["SCYLLA_SHARD_AWARE_PORT"]);
        }

        // The normal port hands shards out round robin.
        var shards = new List<int>();
        for (var i = 0; i < 4; i++)
        {
            await using var c = await RawClient.ConnectAsync(node, startup: false);
            shards.Add(int.Parse((await c.RequestAsync(0x05, [])).Reader().Multimap()["SCYLLA_SHARD"][0]));
        }

        Assert.Equal([0, 1, 2, 3], shards.Order());
    }

    [Fact]
    public async Task Log_records_token_and_replica_of_executes()
    {
        await using var cluster = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Nodes = 3 });
        await using var c = await RawClient.ConnectAsync(cluster.Nodes[0]);
        await c.RowsAsync("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}");
        await c.RowsAsync("CREATE TABLE ks.t (a text, b int, v text, PRIMARY KEY ((a, b)))");
        var (id, pk) = await c.PrepareAsync("INSERT INTO ks.t (v, b, a) VALUES (?, ?, ?)");
        Assert.Equal([2, 1], pk);
        await c.ExecuteAsync(id, [V.Text("x"), V.Int(7), V.Text("k")]);
        var entry = cluster.Nodes[0].Log.Last(r => r.Opcode == 0x0A);
        var expected = Murmur3Token.Token([V.Text("k"), V.Int(7)]);
        Assert.Equal(expected, entry.Token);
        Assert.Equal(cluster.PrimaryReplica(expected) == cluster.Nodes[0], entry.IsReplica);
        Assert.Equal("INSERT INTO ks.t (v, b, a) VALUES (?, ?, ?)", entry.Query);
        Assert.Equal(1, cluster.Nodes[0].Requests(0x0A));
    }

    [Fact]
    public async Task Dropped_connections_are_reset_but_the_listener_stays()
    {
        await using var cluster = await CqlTestCluster.StartAsync();
        var node = cluster.Nodes[0];
        await using var c = await RawClient.ConnectAsync(node);
        node.DropConnections();
        Assert.Null(await c.ReadAsync());
        await using var again = await RawClient.ConnectAsync(node);
        Assert.Single(await again.RowsAsync("SELECT key FROM system.local"));
    }
}
