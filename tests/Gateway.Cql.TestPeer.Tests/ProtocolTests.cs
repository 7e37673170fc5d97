using System.Text;

namespace Gateway.Cql.TestPeer.Tests;

public sealed class ProtocolTests
{
    [Theory]
    [InlineData("test", -6017608668500074083L)]
    [InlineData("abc", -5434086359492102041L)]
    [InlineData("a", -8839064797231613815L)]
    [InlineData("hello world, this is a longer key", -519562019593981577L)]
    public void Murmur3_matches_known_tokens(string key, long token) =>
        Assert.Equal(token, Murmur3Token.Token(Encoding.UTF8.GetBytes(key)));

    [Theory]
    [InlineData("fffe80", 7236304163770186844L)]
    [InlineData("c8c9cacbcccdcecfd0d1d2d3d4d5d6", 7705981495572405323L)]
    [InlineData("000102030405060708090a0b0c0d0e0f", 4920504430128807728L)]
    [InlineData("78797a7b7c7d7e7f808182838485868788", -3867823246018521719L)]
    public void Murmur3_sign_extends_tail_bytes_like_cassandra(string hex, long token) =>
        Assert.Equal(token, Murmur3Token.Token(Convert.FromHexString(hex)));

    [Fact]
    public void Composite_routing_key_is_length_prefixed_with_end_of_component_bytes()
    {
        var key = Murmur3Token.RoutingKey([[0x61], [0x62, 0x63]]);
        Assert.Equal(Convert.FromHexString("000161000002626300"), key);
    }

    [Fact]
    public void Shard_of_token_follows_biased_token_round_robin()
    {
        Assert.Equal(0, Murmur3Token.ShardOf(long.MinValue, 4));
        Assert.Equal(0, Murmur3Token.ShardOf(123, 1));
        // Dropping the top 12 bits makes shards cycle through the ring many times over.
        var shards = Enumerable.Range(0, 4096).Select(i => Murmur3Token.ShardOf(long.MinValue + ((long)i << 50), 4)).Distinct().Count();
        Assert.Equal(4, shards);
    }

    [Fact]
    public async Task Garbage_gets_a_protocol_error_and_the_peer_survives()
    {
        await using var cluster = await CqlTestCluster.StartAsync();
        var node = cluster.Nodes[0];
        await using (var c = await RawClient.ConnectAsync(node, startup: false))
        {
            await c.SendRawAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
            var f = await c.ReadAsync();
            Assert.NotNull(f);
            Assert.Equal(0x000A, f.Error().Code);
            Assert.Null(await c.ReadAsync());
        }

        await using (var c = await RawClient.ConnectAsync(node))
        {
            // A truncated body inside a well-formed frame: a protocol error, and the connection stays usable.
            var bad = await c.RequestAsync(0x07, [0, 0, 0, 50, 1, 2]);
            Assert.Equal(0x000A, bad.Error().Code);
            var unknown = await c.RequestAsync(0x42, []);
            Assert.Equal(0x000A, unknown.Error().Code);
            Assert.Single(await c.RowsAsync("SELECT key FROM system.local WHERE key = 'local'"));
        }
    }

    [Fact]
    public async Task Other_protocol_versions_are_refused_with_the_supported_list()
    {
        await using var cluster = await CqlTestCluster.StartAsync();
        foreach (byte version in new byte[] { 5, 3 })
        {
            await using var c = await RawClient.ConnectAsync(cluster.Nodes[0], startup: false);
            await c.SendAsync(0x01, new BodyWriter().Short(1).String("CQL_VERSION").String("3.0.0").ToArray(), version: version);
            var f = await c.ReadAsync();
            Assert.NotNull(f);
            Assert.Equal(0x80 | version, f.Version);
            var (code, message) = f.Error();
            Assert.Equal(0x000A, code);
            Assert.Contains("4/v4", message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Queries_before_startup_are_refused()
    {
        await using var cluster = await CqlTestCluster.StartAsync();
        await using var c = await RawClient.ConnectAsync(cluster.Nodes[0], startup: false);
        Assert.Equal(0x000A, (await c.QueryAsync("SELECT * FROM system.local")).Error().Code);
        var supported = await c.RequestAsync(0x05, []);
        Assert.Equal(0x06, supported.Opcode);
        var options = supported.Reader().Multimap();
        Assert.Equal(["3.4.5"], options["CQL_VERSION"]);
        Assert.False(options.ContainsKey("SCYLLA_SHARD"));
    }

    [Fact]
    public async Task Bad_credentials_get_an_authentication_error()
    {
        await using var cluster = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Username = "u", Password = "p" });
        await using var c = await RawClient.ConnectAsync(cluster.Nodes[0], startup: false);
        var auth = await c.RequestAsync(0x01, new BodyWriter().Short(1).String("CQL_VERSION").String("3.0.0").ToArray());
        Assert.Equal(0x03, auth.Opcode);
        Assert.Equal("org.apache.cassandra.auth.PasswordAuthenticator", auth.Reader().String());
        var denied = await c.RequestAsync(0x0F, new BodyWriter().Bytes("\0u\0nope"u8.ToArray()).ToArray());
        Assert.Equal(0x0100, denied.Error().Code);
        var ok = await c.RequestAsync(0x0F, new BodyWriter().Bytes("\0u\0p"u8.ToArray()).ToArray());
        Assert.Equal(0x10, ok.Opcode);
        Assert.Single(await c.RowsAsync("SELECT key FROM system.local WHERE key='local'"));
    }

    [Fact]
    public async Task Errors_name_the_problem()
    {
        await using var cluster = await CqlTestCluster.StartAsync();
        await using var c = await RawClient.ConnectAsync(cluster.Nodes[0]);
        var syntax = (await c.QueryAsync("SELEKT * FROM x")).Error();
        Assert.Equal(0x2000, syntax.Code);
        Assert.Contains("SELEKT", syntax.Message, StringComparison.Ordinal);
        Assert.Equal(0x2200, (await c.QueryAsync("SELECT * FROM nope.t")).Error().Code);
        await c.RowsAsync("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
        await c.RowsAsync("CREATE TABLE ks.t (k text PRIMARY KEY, v int)");
        Assert.Equal(0x2200, (await c.QueryAsync("SELECT nope FROM ks.t WHERE k = 'a'")).Error().Code);
        Assert.Equal(0x2200, (await c.QueryAsync("INSERT INTO ks.t (k, v) VALUES ('a', 'not an int')")).Error().Code);
        Assert.Equal(0x2200, (await c.QueryAsync("INSERT INTO ks.t (k, v) VALUES (?, ?)", [V.Text("a"), [1, 2]])).Error().Code);
        Assert.Equal(0x2200, (await c.QueryAsync("SELECT * FROM ks.t WHERE v = 1")).Error().Code);
        var exists = await c.QueryAsync("CREATE TABLE ks.t (k text PRIMARY KEY)");
        var r = exists.Reader();
        Assert.Equal(0x2400, r.Int());
        r.String();
        Assert.Equal("ks", r.String());
        Assert.Equal("t", r.String());
        Assert.Empty(await c.RowsAsync("CREATE TABLE IF NOT EXISTS ks.t (k text PRIMARY KEY)"));
        Assert.Equal(0x2400, (await c.QueryAsync("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy'}")).Error().Code);
    }

    [Fact]
    public async Task Forgotten_prepared_statements_answer_unprepared_until_prepared_again()
    {
        await using var cluster = await CqlTestCluster.StartAsync();
        var node = cluster.Nodes[0];
        await using var c = await RawClient.ConnectAsync(node);
        await c.RowsAsync("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
        await c.RowsAsync("CREATE TABLE ks.t (k text PRIMARY KEY, v int)");
        var (id, pk) = await c.PrepareAsync("INSERT INTO ks.t (k, v) VALUES (?, ?)");
        Assert.Equal([0], pk);
        Assert.Equal(0x08, (await c.ExecuteAsync(id, [V.Text("a"), V.Int(1)])).Opcode);
        node.ForgetPrepared();
        var unprepared = await c.ExecuteAsync(id, [V.Text("a"), V.Int(2)]);
        var r = unprepared.Reader();
        Assert.Equal(0x2500, r.Int());
        r.String();
        Assert.Equal(id, r.ShortBytes());
        var (again, _) = await c.PrepareAsync("INSERT INTO ks.t (k, v) VALUES (?, ?)");
        Assert.Equal(id, again);
        Assert.Equal(0x08, (await c.ExecuteAsync(id, [V.Text("a"), V.Int(3)])).Opcode);
        Assert.Equal(3, cluster.Table("ks", "t")!.Rows.Single().Int("v"));
    }

    [Fact]
    public async Task FailNext_answers_errors_with_valid_details_then_recovers()
    {
        await using var cluster = await CqlTestCluster.StartAsync();
        var node = cluster.Nodes[0];
        await using var c = await RawClient.ConnectAsync(node);
        node.FailNext(0x1000, 2);
        for (var i = 0; i < 2; i++)
        {
            var r = (await c.RequestAsync(0x07, RawClient.QueryBody("SELECT * FROM system.local", consistency: 4))).Reader();
            Assert.Equal(0x1000, r.Int());
            r.String();
            Assert.Equal(4, r.Short());
            var required = r.Int();
            Assert.True(r.Int() < required);
        }

        Assert.Single(await c.RowsAsync("SELECT key FROM system.local"));
        node.FailNext(0x1100);
        var wt = (await c.QueryAsync("SELECT * FROM system.local")).Reader();
        Assert.Equal(0x1100, wt.Int());
        wt.String();
        wt.Short();
        wt.Int();
        wt.Int();
        Assert.Equal("SIMPLE", wt.String());
        node.FailNext(0x1200);
        var rt = (await c.QueryAsync("SELECT * FROM system.local")).Reader();
        Assert.Equal(0x1200, rt.Int());
        rt.String();
        rt.Short();
        rt.Int();
        rt.Int();
        rt.Byte();
        Assert.True(rt.AtEnd);
        node.FailNext(0x1001);
        Assert.Equal(0x1001, (await c.QueryAsync("SELECT * FROM system.local")).Error().Code);
    }

    [Fact]
    public async Task Blackhole_reads_but_never_answers()
    {
        await using var cluster = await CqlTestCluster.StartAsync();
        var node = cluster.Nodes[0];
        await using var c = await RawClient.ConnectAsync(node);
        node.Blackhole = true;
        await c.SendAsync(0x07, RawClient.QueryBody("SELECT * FROM system.local"), stream: 5);
        Assert.Null(await c.ReadAsync(TimeSpan.FromMilliseconds(700)).ContinueWith(t => t.IsCanceled || t.IsFaulted ? null : t.Result));
        Assert.True(node.Requests(0x07) >= 1);
        node.Blackhole = false;
    }

    [Fact]
    public async Task Requests_are_multiplexed_and_answered_by_stream()
    {
        await using var cluster = await CqlTestCluster.StartAsync();
        var node = cluster.Nodes[0];
        node.ResponseDelay = TimeSpan.FromMilliseconds(200);
        await using var c = await RawClient.ConnectAsync(node);
        for (short s = 1; s <= 10; s++)
        {
            await c.SendAsync(0x07, RawClient.QueryBody($"SELECT key FROM system.local WHERE key = 'local' LIMIT {s}"), stream: s);
        }

        for (short s = 10; s >= 1; s--)
        {
            Assert.Equal(0x08, (await c.ResponseAsync(s)).Opcode);
        }

        Assert.True(node.MaxInFlightPerConnection >= 5, $"max in flight {node.MaxInFlightPerConnection}");
    }

    [Fact]
    public async Task Tracing_and_batch_warnings_use_response_flags()
    {
        await using var cluster = await CqlTestCluster.StartAsync();
        await using var c = await RawClient.ConnectAsync(cluster.Nodes[0]);
        await c.RowsAsync("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
        await c.RowsAsync("CREATE TABLE ks.t (k text PRIMARY KEY, v int)");
        var traced = await c.RequestAsync(0x07, RawClient.QueryBody("SELECT * FROM ks.t"), flags: 0x02);
        Assert.Equal(0x02, traced.Flags & 0x02);
        var tr = traced.Reader();
        tr.Raw(16); // the tracing id comes first
        Assert.Equal(2, tr.Int());

        var batch = new BodyWriter().Byte(1).Short(6);
        for (var i = 0; i < 6; i++)
        {
            batch.Byte(0).LongString("INSERT INTO ks.t (k, v) VALUES (?, ?)").Short(2).Bytes(V.Text($"k{i}")).Bytes(V.Int(i));
        }

        batch.Short(1).Byte(0);
        var answer = await c.RequestAsync(0x0D, batch.ToArray());
        Assert.Equal(0x08, answer.Flags & 0x08);
        var r = answer.Reader();
        Assert.Single(r.StringList());
        Assert.Equal(1, r.Int());
        Assert.Equal(6, cluster.Table("ks", "t")!.Rows.Count);
    }
}
