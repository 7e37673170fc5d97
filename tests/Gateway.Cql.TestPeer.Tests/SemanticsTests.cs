namespace Gateway.Cql.TestPeer.Tests;

/// <summary>Write semantics: timestamps, last-write-wins, tombstones, TTL, row markers, unset values, LWT, paging.</summary>
public sealed class SemanticsTests : IAsyncLifetime
{
    private CqlTestCluster _cluster = null!;
    private RawClient _c = null!;

    public async Task InitializeAsync()
    {
        _cluster = await CqlTestCluster.StartAsync();
        _c = await RawClient.ConnectAsync(_cluster.Nodes[0]);
        await _c.RowsAsync("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
        await _c.RowsAsync("USE ks");
        await _c.RowsAsync("CREATE TABLE kv (k text PRIMARY KEY, v text, n bigint)");
        await _c.RowsAsync("CREATE TABLE msgs (chat text, seq bigint, body text, PRIMARY KEY (chat, seq)) WITH CLUSTERING ORDER BY (seq DESC) AND compaction = {'class': 'x'}");
        await _c.RowsAsync("CREATE TABLE short_lived (k text PRIMARY KEY, v text) WITH default_time_to_live = 1");
    }

    public async Task DisposeAsync()
    {
        await _c.DisposeAsync();
        await _cluster.DisposeAsync();
    }

    [Fact]
    public async Task Last_write_wins_by_timestamp_and_ties_go_to_the_greater_value()
    {
        await _c.RowsAsync("INSERT INTO kv (k, v) VALUES ('a', 'later') USING TIMESTAMP 20");
        await _c.RowsAsync("INSERT INTO kv (k, v) VALUES ('a', 'earlier') USING TIMESTAMP 10");
        Assert.Equal("later", V.AsText((await _c.RowsAsync("SELECT v FROM kv WHERE k = 'a'"))[0][0]));
        await _c.RowsAsync("INSERT INTO kv (k, v) VALUES ('a', 'aaa') USING TIMESTAMP 30");
        await _c.RowsAsync("INSERT INTO kv (k, v) VALUES ('a', 'zzz') USING TIMESTAMP 30");
        await _c.RowsAsync("INSERT INTO kv (k, v) VALUES ('a', 'mmm') USING TIMESTAMP 30");
        Assert.Equal("zzz", V.AsText((await _c.RowsAsync("SELECT v FROM kv WHERE k = 'a'"))[0][0]));
        // The default timestamp of the query parameters is the write timestamp.
        await _c.RowsAsync("UPDATE kv SET n = 5 WHERE k = 'a'", timestamp: 1234);
        Assert.Equal(1234, _cluster.Table("ks", "kv")!.Rows.Single().WriteTime("n"));
        Assert.Equal(1234, V.AsBigint((await _c.RowsAsync("SELECT writetime(n) FROM kv WHERE k = 'a'"))[0][0]));
    }

    [Fact]
    public async Task Tombstones_shadow_older_writes_only()
    {
        await _c.RowsAsync("INSERT INTO kv (k, v) VALUES ('d', 'x') USING TIMESTAMP 100");
        await _c.RowsAsync("DELETE FROM kv USING TIMESTAMP 200 WHERE k = 'd'");
        Assert.Empty(await _c.RowsAsync("SELECT * FROM kv WHERE k = 'd'"));
        await _c.RowsAsync("INSERT INTO kv (k, v) VALUES ('d', 'older') USING TIMESTAMP 150");
        Assert.Empty(await _c.RowsAsync("SELECT * FROM kv WHERE k = 'd'"));
        await _c.RowsAsync("INSERT INTO kv (k, v) VALUES ('d', 'tie') USING TIMESTAMP 200");
        Assert.Empty(await _c.RowsAsync("SELECT * FROM kv WHERE k = 'd'"));
        await _c.RowsAsync("INSERT INTO kv (k, v) VALUES ('d', 'newer') USING TIMESTAMP 300");
        Assert.Equal("newer", V.AsText((await _c.RowsAsync("SELECT v FROM kv WHERE k = 'd'"))[0][0]));
        // A cell delete leaves the row (its marker) alive.
        await _c.RowsAsync("DELETE v FROM kv USING TIMESTAMP 400 WHERE k = 'd'");
        var row = await _c.RowsAsync("SELECT k, v FROM kv WHERE k = 'd'");
        Assert.Null(Assert.Single(row)[1]);
        Assert.True(_cluster.Table("ks", "kv")!.AllRows.Single(r => V.AsText(r.Key["k"]) == "d").Cells["v"].IsTombstone);
    }

    [Fact]
    public async Task Rows_live_through_their_marker_or_a_live_cell()
    {
        await _c.RowsAsync("INSERT INTO kv (k, v) VALUES ('ins', 'x')");
        await _c.RowsAsync("UPDATE kv SET v = 'x' WHERE k = 'upd'");
        await _c.RowsAsync("DELETE v FROM kv WHERE k = 'ins'");
        await _c.RowsAsync("DELETE v FROM kv WHERE k = 'upd'");
        Assert.Single(await _c.RowsAsync("SELECT * FROM kv WHERE k = 'ins'"));
        Assert.Empty(await _c.RowsAsync("SELECT * FROM kv WHERE k = 'upd'"));
    }

    [Fact]
    public async Task Unset_values_leave_columns_alone_and_null_deletes()
    {
        await _c.RowsAsync("INSERT INTO kv (k, v, n) VALUES ('u', 'keep', 1)");
        await _c.RowsAsync("INSERT INTO kv (k, v, n) VALUES (?, ?, ?)", [V.Text("u"), V.Unset, null]);
        var row = (await _c.RowsAsync("SELECT v, n FROM kv WHERE k = 'u'"))[0];
        Assert.Equal("keep", V.AsText(row[0]));
        Assert.Null(row[1]);
    }

    [Fact]
    public async Task Ttl_expires_cells_and_rows()
    {
        await _c.RowsAsync("INSERT INTO kv (k, v) VALUES ('t', 'gone soon') USING TTL 1");
        await _c.RowsAsync("INSERT INTO short_lived (k, v) VALUES ('t', 'default ttl')");
        await _c.RowsAsync("INSERT INTO kv (k, n) VALUES ('t2', 1)");
        await _c.RowsAsync("UPDATE kv USING TTL 1 SET v = 'cell ttl' WHERE k = 't2'");
        Assert.Single(await _c.RowsAsync("SELECT * FROM kv WHERE k = 't'"));
        Assert.Single(await _c.RowsAsync("SELECT * FROM short_lived WHERE k = 't'"));
        var ttl = V.AsInt((await _c.RowsAsync("SELECT ttl(v) FROM kv WHERE k = 't2'"))[0][0]);
        Assert.InRange(ttl, 0, 1);
        await Task.Delay(2500);
        Assert.Empty(await _c.RowsAsync("SELECT * FROM kv WHERE k = 't'"));
        Assert.Empty(await _c.RowsAsync("SELECT * FROM short_lived WHERE k = 't'"));
        var t2 = Assert.Single(await _c.RowsAsync("SELECT v, n FROM kv WHERE k = 't2'"));
        Assert.Null(t2[0]);
        Assert.Equal(1, V.AsBigint(t2[1]));
    }

    [Fact]
    public async Task Clustering_order_ranges_and_range_deletes()
    {
        for (var i = 1; i <= 10; i++)
        {
            await _c.RowsAsync("INSERT INTO msgs (chat, seq, body) VALUES ('c', ?, ?)", [V.Bigint(i), V.Text($"m{i}")]);
        }

        var desc = await _c.RowsAsync("SELECT seq FROM msgs WHERE chat = 'c'");
        Assert.Equal(Enumerable.Range(1, 10).Reverse().Select(i => (long)i), desc.Select(r => V.AsBigint(r[0])));
        var asc = await _c.RowsAsync("SELECT seq FROM msgs WHERE chat = 'c' AND seq > 3 AND seq <= 6 ORDER BY seq ASC");
        Assert.Equal([4L, 5, 6], asc.Select(r => V.AsBigint(r[0])));
        await _c.RowsAsync("DELETE FROM msgs WHERE chat = 'c' AND seq >= 8");
        Assert.Equal(7, V.AsBigint((await _c.RowsAsync("SELECT seq FROM msgs WHERE chat = 'c' LIMIT 1"))[0][0]));
        Assert.Equal(7, V.AsBigint((await _c.RowsAsync("SELECT COUNT(*) FROM msgs WHERE chat = 'c'"))[0][0]));
        var inList = await _c.RowsAsync("SELECT seq FROM msgs WHERE chat IN ('c', 'none') AND seq IN (1, 2)");
        Assert.Equal(2, inList.Count);
        Assert.Equal(0x2200, (await _c.QueryAsync("SELECT * FROM msgs WHERE seq = 1")).Error().Code);
    }

    [Fact]
    public async Task Paging_walks_every_row_exactly_once()
    {
        for (var i = 0; i < 25; i++)
        {
            await _c.RowsAsync("INSERT INTO kv (k, n) VALUES (?, ?)", [V.Text($"p{i}"), V.Bigint(i)]);
        }

        var seen = new List<long>();
        byte[]? paging = null;
        var pages = 0;
        do
        {
            var f = await _c.RequestAsync(0x07, RawClient.QueryBody("SELECT n FROM kv", pageSize: 7, pagingState: paging));
            var r = f.Reader();
            Assert.Equal(2, r.Int());
            var (_, rows, next) = r.Rows();
            Assert.True(rows.Count <= 7);
            seen.AddRange(rows.Select(x => V.AsBigint(x[0])));
            paging = next;
            pages++;
        }
        while (paging is not null);

        Assert.Equal(4, pages);
        Assert.Equal(Enumerable.Range(0, 25).Select(i => (long)i), seen.Order());
    }

    [Fact]
    public async Task Lightweight_transactions_are_conditional_and_report_current_values()
    {
        var first = (await _c.QueryAsync("INSERT INTO kv (k, v) VALUES ('l', 'one') IF NOT EXISTS")).Reader();
        Assert.Equal(2, first.Int());
        var (cols, rows, _) = first.Rows();
        Assert.Equal("[applied]", cols[0]);
        Assert.Equal(1, rows[0][0]![0]);
        var (cols2, rows2, _) = (await _c.QueryAsync("INSERT INTO kv (k, v) VALUES ('l', 'two') IF NOT EXISTS")).Reader().Skip4().Rows();
        Assert.Equal(0, rows2[0][0]![0]);
        Assert.Equal("one", V.AsText(rows2[0][cols2.IndexOf("v")]));
        var notApplied = (await _c.QueryAsync("UPDATE kv SET v = 'three' WHERE k = 'l' IF v = 'nope'")).Reader().Skip4().Rows();
        Assert.Equal(["[applied]", "v"], notApplied.Columns);
        Assert.Equal("one", V.AsText(notApplied.Rows[0][1]));
        Assert.Equal(1, (await _c.QueryAsync("UPDATE kv SET v = 'three' WHERE k = 'l' IF v = 'one'")).Reader().Skip4().Rows().Rows[0][0]![0]);
        Assert.Equal(1, (await _c.QueryAsync("DELETE FROM kv WHERE k = 'l' IF EXISTS")).Reader().Skip4().Rows().Rows[0][0]![0]);
        Assert.Equal(0, (await _c.QueryAsync("DELETE FROM kv WHERE k = 'l' IF EXISTS")).Reader().Skip4().Rows().Rows[0][0]![0]);
        Assert.Equal(0x2200, (await _c.QueryAsync("INSERT INTO kv (k) VALUES ('l') IF NOT EXISTS USING TIMESTAMP 5")).Error().Code);
    }

    [Fact]
    public async Task Partition_key_must_be_fully_bound()
    {
        await _c.RowsAsync("CREATE TABLE comp (a text, b int, c int, v text, PRIMARY KEY ((a, b), c))");
        Assert.Equal(0x2200, (await _c.QueryAsync("INSERT INTO comp (a, c, v) VALUES ('x', 1, 'v')")).Error().Code);
        Assert.Equal(0x2200, (await _c.QueryAsync("SELECT * FROM comp WHERE a = 'x'")).Error().Code);
        Assert.Equal(0x2200, (await _c.QueryAsync("UPDATE comp SET v = 'v' WHERE a = 'x' AND b = 1")).Error().Code);
        await _c.RowsAsync("INSERT INTO comp (a, b, c, v) VALUES ('x', 1, 2, 'v')");
        var row = _cluster.Table("ks", "comp")!.Rows.Single();
        Assert.Equal(Murmur3Token.Token([V.Text("x"), V.Int(1)]), row.Token);
        Assert.Equal("v", row.Text("v"));
    }

    [Fact]
    public async Task Types_are_validated_and_round_trip()
    {
        await _c.RowsAsync("CREATE TABLE typed (id uuid PRIMARY KEY, t timestamp, b blob, f boolean, tu timeuuid, l list<text>, m map<text, text>, i int)");
        await _c.RowsAsync("INSERT INTO typed (id, t, b, f, l, m, i) VALUES (123e4567-e89b-12d3-a456-426614174000, 1700000000000, 0xCAFE, true, ['x', 'y'], {'b': '2', 'a': '1'}, -5)");
        var row = (await _c.RowsAsync("SELECT b, f, i, t FROM typed WHERE id = 123e4567-e89b-12d3-a456-426614174000"))[0];
        Assert.Equal([0xCA, 0xFE], row[0]);
        Assert.Equal([1], row[1]);
        Assert.Equal(-5, V.AsInt(row[2]));
        Assert.Equal(1700000000000, V.AsBigint(row[3]));
        Assert.Equal(0x2200, (await _c.QueryAsync("INSERT INTO typed (id, tu) VALUES (123e4567-e89b-12d3-a456-426614174000, 123e4567-e89b-42d3-a456-426614174000)")).Error().Code);
        Assert.Equal(0x2200, (await _c.QueryAsync("INSERT INTO typed (id, i) VALUES (?, ?)", [new byte[16], new byte[3]])).Error().Code);
    }
}

internal static class ReaderExtensions
{
    /// <summary>Skips the result kind ([int]) of a RESULT body.</summary>
    public static BodyReader Skip4(this BodyReader r)
    {
        r.Int();
        return r;
    }
}
