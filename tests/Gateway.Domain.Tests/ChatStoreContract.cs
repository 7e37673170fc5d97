using System.Text;

namespace Gateway.Domain.Tests;

/// <summary>
/// What every history store must do, whatever it runs on. Each store runs this suite through its own subclass:
/// RocksDB (embedded) and Scylla (through our CQL client against the CQL test peer, or a real cluster when
/// SCYLLA_CONTACT_POINTS is set).
/// </summary>
public abstract class ChatStoreContract : IAsyncLifetime
{
    protected const string Tenant = "acme";
    private readonly FakeTimeProvider _time = TestClock.New();
    private IChatStore _store = null!;

    protected FakeTimeProvider Time => _time;

    /// <summary>Opens the store over this test's data; called again after <see cref="CloseAsync"/> to reopen the same data.</summary>
    protected abstract Task<IChatStore> OpenAsync(TimeProvider time);

    /// <summary>The chats of a user from the store's reverse index.</summary>
    protected abstract ValueTask<IReadOnlyList<string>> GetChatsOfUserAsync(IChatStore store, string tenantId, string userId);

    /// <summary>Releases what the subclass set up for this test (after the store is closed).</summary>
    protected virtual Task CleanUpAsync() => Task.CompletedTask;

    public async Task InitializeAsync() => _store = await OpenAsync(_time);

    public async Task DisposeAsync()
    {
        await CloseAsync();
        await CleanUpAsync();
    }

    /// <summary>Closes the store (as a crash or a restart would, between two calls).</summary>
    protected async Task CloseAsync()
    {
        if (_store is IAsyncDisposable asyncDisposable)
        {
            await asyncDisposable.DisposeAsync();
        }
        else
        {
            _store.Dispose();
        }
    }

    protected async Task ReopenAsync()
    {
        await CloseAsync();
        _store = await OpenAsync(_time);
    }

    protected IChatStore Store => _store;

    private IProjectionStore Projection => (IProjectionStore)_store;

    [Fact]
    public async Task Append_then_every_read_path_returns_the_message_field_for_field()
    {
        var content = new byte[] { 0, 1, 2, 0xFF, 0x80 };
        var message = Message("general", 1, "alice", "c-1", content, expiresAt: _time.NowMs() + 60_000);

        await _store.AppendAsync([message]).Within();

        Assert.Equal(1UL, await _store.GetHeadAsync(Tenant, "general").Within());
        var after = await _store.ReadAfterAsync(Tenant, "general", 0, 10).Within();
        var before = await _store.ReadBeforeAsync(Tenant, "general", 0, 10).Within();
        AssertSameMessage(message, Assert.Single(after));
        AssertSameMessage(message, Assert.Single(before));

        var record = await _store.GetIdempotencyAsync(Tenant, "alice", "c-1").Within();
        Assert.NotNull(record);
        Assert.Equal(new IdempotencyRecord("general", 1, message.MessageId, message.SentAt, PayloadDigest.Of(message)), record);
        Assert.Null(await _store.GetIdempotencyAsync(Tenant, "alice", "c-2").Within());
        Assert.Null(await _store.GetIdempotencyAsync(Tenant, "bob", "c-1").Within());
    }

    [Fact]
    public async Task A_projection_batch_writes_changes_and_checkpoint_together_and_later_changes_see_earlier_ones()
    {
        Assert.Equal(0UL, await Projection.GetCheckpointAsync("LOG_A").Within());
        var result = await Projection.ApplyAsync("LOG_A", 7,
        [
            new ProjectionChange(ProjectionChangeKind.MembersAdded, Tenant, "p", null, ["alice", "bob"], 5),
            ProjectionChange.Of(Message("p", 1, "alice", "x-1")),
            new ProjectionChange(ProjectionChangeKind.MembersRemoved, Tenant, "p", null, ["bob"], 6),
            ProjectionChange.Of(Message("p", 2, "alice", "x-2")),
            new ProjectionChange(ProjectionChangeKind.MembersAdded, Tenant, "p", null, ["bob"], 7),
            new ProjectionChange(ProjectionChangeKind.MembersRemoved, Tenant, "p", null, ["bob"], 8),
        ]).Within();

        Assert.Equal(new ProjectionResult(2, 0), result);
        Assert.Equal(7UL, await Projection.GetCheckpointAsync("LOG_A").Within());
        Assert.Equal(0UL, await Projection.GetCheckpointAsync("LOG_B").Within());
        Assert.Equal(2UL, await _store.GetHeadAsync(Tenant, "p").Within());
        Assert.Equal(["alice"], await _store.GetMembersAsync(Tenant, "p").Within());
        Assert.True(await _store.ChatExistsAsync(Tenant, "p").Within());
        Assert.Equal(["p"], await GetChatsOfUserAsync(_store, Tenant, "alice").Within());
        Assert.Empty(await GetChatsOfUserAsync(_store, Tenant, "bob").Within());
        Assert.NotNull(await _store.GetIdempotencyAsync(Tenant, "alice", "x-2").Within());

        // Reopened, as after a crash: the checkpoint is durable with the changes.
        await ReopenAsync();
        Assert.Equal(7UL, await Projection.GetCheckpointAsync("LOG_A").Within());
        Assert.Equal(2UL, await _store.GetHeadAsync(Tenant, "p").Within());
    }

    [Fact]
    public async Task A_projection_batch_leaves_stored_seqs_alone_and_refuses_a_hole_writing_nothing()
    {
        await Projection.ApplyAsync("LOG_A", 1, [ProjectionChange.Of(Message("p", 1, "alice", "x-1", Encoding.UTF8.GetBytes("first")))]).Within();

        // Seq 1 again (another message under a seq the log holds twice): the first one stays.
        var result = await Projection.ApplyAsync("LOG_A", 3,
            [ProjectionChange.Of(Message("p", 1, "bob", "y-1", Encoding.UTF8.GetBytes("second"))), ProjectionChange.Of(Message("p", 2, "alice", "x-2"))]).Within();
        Assert.Equal(new ProjectionResult(1, 1), result);
        var stored = await _store.ReadAfterAsync(Tenant, "p", 0, 10).Within();
        Assert.Equal([1UL, 2UL], stored.Select(m => m.Seq));
        Assert.Equal("first", Encoding.UTF8.GetString(stored[0].Content.Span));

        // Seq 4 after head 2 would leave a hole: the whole batch fails, checkpoint included.
        await Assert.ThrowsAsync<InvalidOperationException>(() => Projection.ApplyAsync("LOG_A", 9,
            [ProjectionChange.Of(Message("q", 1, "alice", "z-1")), ProjectionChange.Of(Message("p", 4, "alice", "x-4"))]).Within());
        Assert.Equal(3UL, await Projection.GetCheckpointAsync("LOG_A").Within());
        Assert.Equal(0UL, await _store.GetHeadAsync(Tenant, "q").Within());
        Assert.Equal(2UL, await _store.GetHeadAsync(Tenant, "p").Within());
    }

    [Fact]
    public async Task Unknown_chat_has_head_zero_and_no_messages()
    {
        Assert.Equal(0UL, await _store.GetHeadAsync(Tenant, "nobody").Within());
        Assert.Empty(await _store.ReadAfterAsync(Tenant, "nobody", 0, 10).Within());
        Assert.Empty(await _store.ReadBeforeAsync(Tenant, "nobody", 0, 10).Within());
        Assert.False(await _store.ChatExistsAsync(Tenant, "nobody").Within());
        Assert.Empty(await _store.GetMembersAsync(Tenant, "nobody").Within());
    }

    [Fact]
    public async Task ReadAfter_pages_through_many_seqs_in_order_without_gaps()
    {
        // 600 messages in batches of 50: 12 synced writes, seqs crossing every byte boundary of the low byte twice.
        const int Total = 600;
        for (var start = 1; start <= Total; start += 50)
        {
            await _store.AppendAsync([.. Enumerable.Range(start, 50).Select(s => Message("big", (ulong)s, "alice", $"m{s}"))]).Within();
        }

        var seen = new List<ulong>();
        ulong cursor = 0;
        while (true)
        {
            var page = await _store.ReadAfterAsync(Tenant, "big", cursor, 64).Within();
            if (page.Count == 0)
            {
                break;
            }

            Assert.True(page.Count <= 64);
            seen.AddRange(page.Select(m => m.Seq));
            cursor = page[^1].Seq;
        }

        Assert.Equal(Enumerable.Range(1, Total).Select(i => (ulong)i), seen);
        Assert.Equal((ulong)Total, await _store.GetHeadAsync(Tenant, "big").Within());
    }

    [Fact]
    public async Task ReadBefore_returns_newest_first_below_the_bound()
    {
        await _store.AppendAsync([.. Enumerable.Range(1, 20).Select(s => Message("c", (ulong)s, "alice", $"m{s}"))]).Within();

        var newest = await _store.ReadBeforeAsync(Tenant, "c", 0, 5).Within();
        Assert.Equal([20UL, 19, 18, 17, 16], newest.Select(m => m.Seq));

        var older = await _store.ReadBeforeAsync(Tenant, "c", 16, 5).Within();
        Assert.Equal([15UL, 14, 13, 12, 11], older.Select(m => m.Seq));

        var oldest = await _store.ReadBeforeAsync(Tenant, "c", 3, 5).Within();
        Assert.Equal([2UL, 1], oldest.Select(m => m.Seq));

        Assert.Empty(await _store.ReadBeforeAsync(Tenant, "c", 1, 5).Within());
        Assert.Equal([7UL, 8], (await _store.ReadAfterAsync(Tenant, "c", 6, 2).Within()).Select(m => m.Seq));
        Assert.Empty(await _store.ReadAfterAsync(Tenant, "c", 20, 5).Within());
    }

    [Fact]
    public async Task Chats_whose_ids_share_bytes_never_see_each_others_messages()
    {
        // "a"+"bc" and "ab"+"c" concatenate to the same bytes; "x" is a prefix of "xy". Length prefixes keep them apart.
        await _store.AppendAsync([Message("bc", 1, "u", "1", tenant: "a"), Message("c", 1, "u", "2", tenant: "ab")]).Within();
        await _store.AppendAsync([Message("x", 1, "u", "3"), Message("xy", 1, "u", "4"), Message("xy", 2, "u", "5")]).Within();

        Assert.Equal("1", Assert.Single(await _store.ReadAfterAsync("a", "bc", 0, 10).Within()).ClientMessageId);
        Assert.Equal("2", Assert.Single(await _store.ReadAfterAsync("ab", "c", 0, 10).Within()).ClientMessageId);
        Assert.Equal("3", Assert.Single(await _store.ReadAfterAsync(Tenant, "x", 0, 10).Within()).ClientMessageId);
        Assert.Equal("3", Assert.Single(await _store.ReadBeforeAsync(Tenant, "x", 0, 10).Within()).ClientMessageId);
        Assert.Equal(2, (await _store.ReadBeforeAsync(Tenant, "xy", 0, 10).Within()).Count);
        Assert.Equal(1UL, await _store.GetHeadAsync(Tenant, "x").Within());
        Assert.Equal(2UL, await _store.GetHeadAsync(Tenant, "xy").Within());
    }

    [Fact]
    public async Task Expired_messages_are_left_out_of_both_directions()
    {
        var now = _time.NowMs();
        await _store.AppendAsync(
        [
            Message("c", 1, "u", "1"),
            Message("c", 2, "u", "2", expiresAt: now + 1_000),
            Message("c", 3, "u", "3", expiresAt: now + 10_000),
            Message("c", 4, "u", "4"),
        ]).Within();

        Assert.Equal(4, (await _store.ReadAfterAsync(Tenant, "c", 0, 10).Within()).Count);

        _time.Advance(TimeSpan.FromSeconds(1)); // seq 2 expires exactly now: expiry is inclusive
        Assert.Equal([1UL, 3, 4], (await _store.ReadAfterAsync(Tenant, "c", 0, 10).Within()).Select(m => m.Seq));
        Assert.Equal([4UL, 3, 1], (await _store.ReadBeforeAsync(Tenant, "c", 0, 10).Within()).Select(m => m.Seq));

        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal([1UL, 4], (await _store.ReadAfterAsync(Tenant, "c", 0, 10).Within()).Select(m => m.Seq));

        // The limit counts returned messages; the head still says 4 so a reader can tell what was skipped.
        Assert.Equal([1UL, 4], (await _store.ReadAfterAsync(Tenant, "c", 0, 2).Within()).Select(m => m.Seq));
        Assert.Equal(4UL, await _store.GetHeadAsync(Tenant, "c").Within());
    }

    [Fact]
    public async Task Append_refuses_seqs_that_do_not_continue_the_head_and_writes_nothing()
    {
        await _store.AppendAsync([Message("c", 1, "u", "1")]).Within();

        // A hole, a rewrite, and a valid message batched with a bad one: all refused as a whole.
        await Assert.ThrowsAsync<InvalidOperationException>(() => _store.AppendAsync([Message("c", 3, "u", "3")]).Within());
        await Assert.ThrowsAsync<InvalidOperationException>(() => _store.AppendAsync([Message("c", 1, "u", "x")]).Within());
        await Assert.ThrowsAsync<InvalidOperationException>(() => _store.AppendAsync([Message("c", 2, "u", "2"), Message("c", 4, "u", "4")]).Within());

        Assert.Equal(1UL, await _store.GetHeadAsync(Tenant, "c").Within());
        Assert.Null(await _store.GetIdempotencyAsync(Tenant, "u", "2").Within());

        // Several chats in one batch, each dense on its own.
        await _store.AppendAsync([Message("c", 2, "u", "2"), Message("d", 1, "u", "d1"), Message("c", 3, "u", "3")]).Within();
        Assert.Equal(3UL, await _store.GetHeadAsync(Tenant, "c").Within());
        Assert.Equal(1UL, await _store.GetHeadAsync(Tenant, "d").Within());
    }

    [Fact]
    public async Task Membership_round_trips_with_reverse_index()
    {
        await _store.AddMembersAsync(Tenant, "team", ["carol", "alice", "bob"], joinedAt: 1).Within();
        await _store.AddMembersAsync(Tenant, "other", ["alice"], joinedAt: 2).Within();

        Assert.True(await _store.ChatExistsAsync(Tenant, "team").Within());
        Assert.Equal(["alice", "bob", "carol"], (await _store.GetMembersAsync(Tenant, "team").Within()).Order(StringComparer.Ordinal));
        Assert.Equal(["other", "team"], (await GetChatsOfUserAsync(_store, Tenant, "alice").Within()).Order(StringComparer.Ordinal));

        // Adding again is a no-op, removing reports whether there was something to remove.
        await _store.AddMembersAsync(Tenant, "team", ["alice"], joinedAt: 3).Within();
        Assert.True(await _store.RemoveMemberAsync(Tenant, "team", "alice").Within());
        Assert.False(await _store.RemoveMemberAsync(Tenant, "team", "alice").Within());
        Assert.False(await _store.RemoveMemberAsync(Tenant, "nope", "alice").Within());

        Assert.Equal(["bob", "carol"], (await _store.GetMembersAsync(Tenant, "team").Within()).Order(StringComparer.Ordinal));
        Assert.Equal(["other"], await GetChatsOfUserAsync(_store, Tenant, "alice").Within());

        // A chat whose last member left still exists.
        Assert.True(await _store.RemoveMemberAsync(Tenant, "other", "alice").Within());
        Assert.True(await _store.ChatExistsAsync(Tenant, "other").Within());
        Assert.Empty(await _store.GetMembersAsync(Tenant, "other").Within());

        // Other tenants are separate.
        Assert.False(await _store.ChatExistsAsync("acme2", "team").Within());
    }

    [Fact]
    public async Task Everything_appended_is_there_after_reopening_the_directory()
    {
        var messages = Enumerable.Range(1, 30).Select(s => Message("c", (ulong)s, "alice", $"m{s}")).ToList();
        await _store.AppendAsync(messages).Within();
        await _store.AddMembersAsync(Tenant, "c", ["alice", "bob"], joinedAt: 5).Within();
        await _store.RemoveMemberAsync(Tenant, "c", "bob").Within();

        await ReopenAsync();

        Assert.Equal(30UL, await _store.GetHeadAsync(Tenant, "c").Within());
        var read = await _store.ReadAfterAsync(Tenant, "c", 0, 100).Within();
        Assert.Equal(30, read.Count);
        for (var i = 0; i < 30; i++)
        {
            AssertSameMessage(messages[i], read[i]);
        }

        Assert.Equal(messages[6].MessageId, (await _store.GetIdempotencyAsync(Tenant, "alice", "m7").Within())!.MessageId);
        Assert.True(await _store.ChatExistsAsync(Tenant, "c").Within());
        Assert.Equal(["alice"], await _store.GetMembersAsync(Tenant, "c").Within());

        // And the head continues from what was durable.
        await _store.AppendAsync([Message("c", 31, "alice", "m31")]).Within();
        Assert.Equal(31UL, await _store.GetHeadAsync(Tenant, "c").Within());
    }

    [Fact]
    public async Task Calls_after_dispose_throw_ObjectDisposedException()
    {
        await CloseAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => _store.GetHeadAsync(Tenant, "c").AsTask());
        await Assert.ThrowsAsync<ObjectDisposedException>(() => _store.AppendAsync([Message("c", 1, "u", "1")]).AsTask());
        await CloseAsync(); // twice is fine
    }

    protected ChatMessage Message(string chatId, ulong seq, string senderId, string clientMessageId, byte[]? content = null, long? expiresAt = null, string tenant = Tenant) =>
        new(tenant, chatId, seq, Guid.CreateVersion7().ToString("N"), senderId, _time.NowMs(), "text/plain",
            content ?? Encoding.UTF8.GetBytes($"message {seq}"), expiresAt, clientMessageId);

    protected static void AssertSameMessage(ChatMessage expected, ChatMessage actual)
    {
        // ChatMessage's record equality compares ReadOnlyMemory by reference, so compare the content bytes apart.
        Assert.Equal(expected with { Content = default }, actual with { Content = default });
        Assert.Equal(expected.Content.ToArray(), actual.Content.ToArray());
    }
}
