using System.Text;
using Gateway.Cql;
using Gateway.Cql.TestPeer;
using Gateway.Storage.Scylla;

namespace Gateway.Domain.Tests;

/// <summary>
/// Where the Scylla store's tests find a cluster: <c>SCYLLA_CONTACT_POINTS</c> (host[:port],…) names a real one;
/// otherwise the CQL test peer (a test double speaking the native protocol over real sockets) is started here. Each
/// test gets its own keyspace.
/// </summary>
public sealed class ScyllaTarget : IAsyncLifetime
{
    private CqlTestCluster? _peer;

    public string ContactPoints { get; private set; } = "";

    /// <summary>True when the tests run against the test peer (not a real cluster).</summary>
    public bool IsTestPeer => _peer is not null;

    public CqlTestCluster? Peer => _peer;

    public async Task InitializeAsync()
    {
        if (Environment.GetEnvironmentVariable("SCYLLA_CONTACT_POINTS") is { Length: > 0 } points)
        {
            ContactPoints = points;
            return;
        }

        _peer = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Nodes = 1 });
        ContactPoints = string.Join(',', _peer.ContactPoints);
    }

    public async Task DisposeAsync()
    {
        if (_peer is not null)
        {
            await _peer.DisposeAsync();
        }
    }

    /// <summary>Options for a fresh keyspace (replication 1: a test peer or a one-node test cluster).</summary>
    public ScyllaStoreOptions NewKeyspace(int bucketSize = 16) => new()
    {
        ContactPoints = ContactPoints,
        Keyspace = "t" + Guid.NewGuid().ToString("N")[..20],
        Replication = "{'class': 'SimpleStrategy', 'replication_factor': 1}",
        BucketSize = bucketSize,
        RequestTimeoutMs = 10_000,
    };

    public async Task ApplySchemaAsync(ScyllaStoreOptions options)
    {
        await using var cluster = await CqlCluster.ConnectAsync(ScyllaChatStore.ClusterOptions(options));
        await ScyllaSchema.ApplyAsync(cluster, options);
    }
}

/// <summary>The store contract through our CQL client, with small buckets so that every read crosses partitions.</summary>
public sealed class ScyllaChatStoreTests(ScyllaTarget target) : ChatStoreContract, IClassFixture<ScyllaTarget>
{
    private ScyllaStoreOptions? _options;

    protected override async Task<IChatStore> OpenAsync(TimeProvider time)
    {
        if (_options is null)
        {
            _options = target.NewKeyspace(bucketSize: 16);
            await target.ApplySchemaAsync(_options);
        }

        return await ScyllaChatStore.OpenAsync(_options, time: time);
    }

    protected override ValueTask<IReadOnlyList<string>> GetChatsOfUserAsync(IChatStore store, string tenantId, string userId) =>
        ((ScyllaChatStore)store).GetChatsOfUserAsync(tenantId, userId);

    [Fact]
    public async Task Messages_land_in_the_partition_of_their_bucket_and_reads_walk_buckets_both_ways()
    {
        // Bucket size 16: seqs 1..16 in bucket 0, 17..32 in bucket 1, …; 40 messages span three partitions.
        await Store.AppendAsync([.. Enumerable.Range(1, 40).Select(s => Message("b", (ulong)s, "alice", $"m{s}"))]).Within();
        Assert.Equal(Enumerable.Range(14, 6).Select(i => (ulong)i), (await Store.ReadAfterAsync(Tenant, "b", 13, 6).Within()).Select(m => m.Seq));
        Assert.Equal(Enumerable.Range(14, 6).Reverse().Select(i => (ulong)i), (await Store.ReadBeforeAsync(Tenant, "b", 20, 6).Within()).Select(m => m.Seq));
        if (target.Peer?.Table(_options!.Keyspace, "messages") is { } table)
        {
            var buckets = table.Rows.Where(r => Encoding.UTF8.GetString(r.Key["chat_id"]) == "b")
                .Select(r => System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(r.Key["bucket"])).Distinct().Order();
            Assert.Equal([0L, 1, 2], buckets);
        }
    }

    [Fact]
    public async Task Reads_forward_stop_at_the_head_while_a_batch_is_half_written()
    {
        // Seqs 1..3 are committed (head 3). A projection batch with 4..7 is being written: its messages go out
        // concurrently and the head follows them, so for a moment 5 and 7 are stored and 4 and 6 are not. A forward read
        // that returned 5 and 7 would let catch-up (which trusts a page up to its last seq) skip 4 and 6 for good.
        var projection = (ISharedProjectionStore)Store;
        await projection.ApplyAsync("LOG", 3, [.. Enumerable.Range(1, 3).Select(s => ProjectionChange.Of(Message("h", (ulong)s, "alice", $"m{s}")))]).Within();
        await using (var cluster = await CqlCluster.ConnectAsync(ScyllaChatStore.ClusterOptions(_options!)))
        {
            foreach (var seq in new[] { 5L, 7L })
            {
                await cluster.QueryAsync(
                    $"INSERT INTO {_options!.Keyspace}.messages (tenant_id, chat_id, bucket, seq, message_id, sender_id, sent_at, content_type, content, client_message_id) VALUES (?, ?, 0, ?, ?, 'alice', 1, 'text/plain', 0x00, ?) USING TIMESTAMP 7",
                    [Tenant, "h", CqlValue.BigInt(seq), $"id-{seq}", $"m{seq}"]).Within();
            }
        }

        Assert.Equal([1UL, 2, 3], (await Store.ReadAfterAsync(Tenant, "h", 0, 100).Within()).Select(m => m.Seq));
        var (head, page) = await Store.ReadCatchUpAsync(Tenant, "h", 1, 100).Within();
        Assert.Equal(3UL, head);
        Assert.Equal([2UL, 3], page.Select(m => m.Seq));

        // The rest of the batch lands with its head: now everything up to 7 is read, in order and without holes.
        await projection.ApplyAsync("LOG", 7, [.. Enumerable.Range(4, 4).Select(s => ProjectionChange.Of(Message("h", (ulong)s, "alice", $"m{s}")))]).Within();
        Assert.Equal(Enumerable.Range(1, 7).Select(s => (ulong)s), (await Store.ReadAfterAsync(Tenant, "h", 0, 100).Within()).Select(m => m.Seq));
    }

    [Fact]
    public async Task A_late_write_of_an_earlier_projection_batch_never_undoes_a_later_one()
    {
        var projection = (ISharedProjectionStore)Store;
        await projection.ApplyAsync("LOG", 5, [new ProjectionChange(ProjectionChangeKind.MembersAdded, Tenant, "p", null, ["alice", "bob"], 1)]).Within();
        await projection.ApplyAsync("LOG", 9, [new ProjectionChange(ProjectionChangeKind.MembersRemoved, Tenant, "p", null, ["bob"], 2)]).Within();

        // A writer that lost its lease (or a replay after a crash) writes batch 5 again, late: bob stays removed and the
        // checkpoint does not move back, because every cell carries its batch's log position as write timestamp.
        await using var zombie = await ScyllaChatStore.OpenAsync(_options!, time: Time);
        await zombie.ApplyAsync("LOG", 5, [new ProjectionChange(ProjectionChangeKind.MembersAdded, Tenant, "p", null, ["bob"], 1)]).Within();
        Assert.Equal(["alice"], await Store.GetMembersAsync(Tenant, "p").Within());
        Assert.Equal(9UL, await projection.GetCheckpointAsync("LOG").Within());
    }

    [Fact]
    public async Task One_writer_holds_a_projection_lease_until_it_releases_it_or_it_runs_out()
    {
        var a = (ISharedProjectionStore)Store;
        await using var other = await ScyllaChatStore.OpenAsync(_options!, time: Time);
        Assert.True(await a.TryHoldLeaseAsync("LOG", "w1", TimeSpan.FromSeconds(30)).Within());
        Assert.True(await a.TryHoldLeaseAsync("LOG", "w1", TimeSpan.FromSeconds(30)).Within()); // renewal
        Assert.False(await other.TryHoldLeaseAsync("LOG", "w2", TimeSpan.FromSeconds(30)).Within());
        Assert.True(await other.TryHoldLeaseAsync("OTHER_LOG", "w2", TimeSpan.FromSeconds(30)).Within());

        await a.ReleaseLeaseAsync("LOG", "w1").Within();
        Assert.True(await other.TryHoldLeaseAsync("LOG", "w2", TimeSpan.FromSeconds(1)).Within());
        Assert.False(await a.TryHoldLeaseAsync("LOG", "w1", TimeSpan.FromSeconds(30)).Within());

        // Not renewed: it runs out (TTL) and the other writer takes it.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!await a.TryHoldLeaseAsync("LOG", "w1", TimeSpan.FromSeconds(30)).Within())
        {
            Assert.True(DateTime.UtcNow < deadline, "the unrenewed lease never ran out");
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task Expiring_messages_are_written_with_a_ttl_that_outlasts_their_expiry()
    {
        var message = Message("e", 1, "alice", "e-1", Encoding.UTF8.GetBytes("soon gone"), expiresAt: Time.NowMs() + 5_000);
        await Store.AppendAsync([message]).Within();
        if (target.Peer?.Table(_options!.Keyspace, "messages") is { } table)
        {
            // The peer's TTL runs on the wall clock from when it got the write.
            var cell = Assert.Single(table.Rows, r => Encoding.UTF8.GetString(r.Key["chat_id"]) == "e").Cells["content"];
            var left = (cell.ExpiresAt!.Value - DateTimeOffset.UtcNow).TotalSeconds;
            Assert.InRange(left, 5 + ScyllaChatStore.ExpiryMarginSeconds - 30, 5 + ScyllaChatStore.ExpiryMarginSeconds + 1);
        }
    }

    [Fact]
    public async Task Opening_refuses_a_keyspace_without_the_schema_or_with_another_bucket_size()
    {
        var missing = target.NewKeyspace();
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => ScyllaChatStore.OpenAsync(missing));
        Assert.Contains("schema apply", e.Message, StringComparison.Ordinal);

        var other = new ScyllaStoreOptions { ContactPoints = _options!.ContactPoints, Keyspace = _options.Keyspace, BucketSize = 17, Replication = _options.Replication };
        e = await Assert.ThrowsAsync<InvalidOperationException>(() => ScyllaChatStore.OpenAsync(other));
        Assert.Contains("BucketSize=16", e.Message, StringComparison.Ordinal);

        // Applying again with the same settings is harmless and reports the version found.
        await using var cluster = await CqlCluster.ConnectAsync(ScyllaChatStore.ClusterOptions(_options));
        Assert.Equal(ScyllaSchema.Version, await ScyllaSchema.ApplyAsync(cluster, _options));
    }
}
