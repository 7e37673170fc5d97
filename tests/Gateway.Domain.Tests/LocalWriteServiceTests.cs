using System.Text;
using Gateway.Protocol;
using static Gateway.Domain.Tests.ServiceHarness;

namespace Gateway.Domain.Tests;

public sealed class LocalWriteServiceTests
{
    [Fact]
    public async Task Seqs_are_dense_from_one_and_every_send_is_durable_when_acknowledged()
    {
        await using var h = Start();
        await h.CreateChatAsync("c", "alice", "bob");

        for (var i = 1; i <= 20; i++)
        {
            var result = await h.Service.SendAsync(Text("c", i % 2 == 0 ? "alice" : "bob", $"m{i}")).Within();
            Assert.True(result.IsSuccess, result.ErrorMessage);
            Assert.Equal((ulong)i, result.Seq);
            Assert.False(result.Duplicate);

            // Acknowledged means durable: the store already has it.
            Assert.Equal((ulong)i, await h.Store.GetHeadAsync(Tenant, "c").Within());
        }

        var stored = await h.Store.ReadAfterAsync(Tenant, "c", 0, 100).Within();
        Assert.Equal(Enumerable.Range(1, 20).Select(i => (ulong)i), stored.Select(m => m.Seq));
        Assert.Equal(20, stored.Select(m => m.MessageId).Distinct().Count());
    }

    [Fact]
    public async Task A_retried_send_returns_the_original_seq_and_message_id_and_publishes_once()
    {
        await using var h = Start();
        await h.CreateChatAsync("c", "alice");

        var first = await h.Service.SendAsync(Text("c", "alice", "k1", "one")).Within();
        h.Time.Advance(TimeSpan.FromSeconds(5));
        var retry = await h.Service.SendAsync(Text("c", "alice", "k1", "one")).Within();

        Assert.True(retry.IsSuccess);
        Assert.True(retry.Duplicate);
        Assert.Equal(first.Seq, retry.Seq);
        Assert.Equal(first.MessageId, retry.MessageId);
        Assert.Equal(first.SentAt, retry.SentAt);

        var next = await h.Service.SendAsync(Text("c", "alice", "k2")).Within();
        Assert.Equal(2UL, next.Seq);

        await h.FlushAsync();
        Assert.Equal([1UL, 2], h.Events.Messages().Select(m => m.Seq));
        Assert.Equal("one", Encoding.UTF8.GetString(h.Events.Messages()[0].Content.Span));
    }

    [Fact]
    public async Task Duplicates_are_recognised_after_a_restart_and_seqs_continue()
    {
        await using var h = Start();
        await h.CreateChatAsync("c", "alice");
        var first = await h.Service.SendAsync(Text("c", "alice", "k1")).Within();
        await h.Service.SendAsync(Text("c", "alice", "k2")).Within();

        await h.RestartAsync();

        var retry = await h.Service.SendAsync(Text("c", "alice", "k1")).Within();
        Assert.True(retry.Duplicate);
        Assert.Equal(first.Seq, retry.Seq);
        Assert.Equal(first.MessageId, retry.MessageId);
        Assert.Equal(first.SentAt, retry.SentAt);

        var third = await h.Service.SendAsync(Text("c", "alice", "k3")).Within();
        Assert.Equal(3UL, third.Seq);
        Assert.False(third.Duplicate);
        Assert.True(await h.Service.IsMemberAsync(Tenant, "c", "alice").Within());
    }

    [Fact]
    public async Task Non_members_and_unknown_chats_get_NotMember()
    {
        await using var h = Start();
        await h.CreateChatAsync("c", "alice");

        var outsider = await h.Service.SendAsync(Text("c", "mallory", "k1")).Within();
        Assert.Equal(ErrorCode.NotMember, outsider.Error);
        Assert.NotNull(outsider.ErrorMessage);

        var nowhere = await h.Service.SendAsync(Text("no-such-chat", "alice", "k1")).Within();
        Assert.Equal(ErrorCode.NotMember, nowhere.Error);

        // Neither consumed a seq nor the idempotency key.
        var ok = await h.Service.SendAsync(Text("c", "alice", "k1")).Within();
        Assert.Equal(1UL, ok.Seq);
        Assert.False(ok.Duplicate);
    }

    public static TheoryData<string, SendMessage> InvalidSends() => new()
    {
        { "chatId", Text("bad.chat", "alice", "k") },
        { "tenantId", Text("c", "alice", "k") with { TenantId = "" } },
        { "senderId", Text("c", "al ice", "k") },
        { "clientMessageId", Text("c", "alice", "") },
        { "contentType", Text("c", "alice", "k") with { ContentType = "text/plain;\tcharset=utf-8" } },
        { "content", Text("c", "alice", "k", new string('x', 33 * 1024)) },
        { "expiresAt", Text("c", "alice", "k", expiresAt: TestClock.DefaultStart.ToUnixTimeMilliseconds()) },
        { "expiresAt", Text("c", "alice", "k", expiresAt: TestClock.DefaultStart.AddDays(31).ToUnixTimeMilliseconds()) },
    };

    [Theory]
    [MemberData(nameof(InvalidSends))]
    public async Task Invalid_sends_fail_validation_naming_the_field(string field, SendMessage command)
    {
        await using var h = Start();
        await h.CreateChatAsync("c", "alice");

        var result = await h.Service.SendAsync(command).Within();

        Assert.Equal(ErrorCode.ValidationFailed, result.Error);
        Assert.Contains(field, result.ErrorMessage, StringComparison.Ordinal);
        Assert.Equal(0UL, await h.Store.GetHeadAsync(Tenant, "c").Within());
    }

    [Fact]
    public async Task Content_and_expiry_limits_are_configurable()
    {
        await using var h = Start(new WriteServiceOptions { MaxContentBytes = 4, MaxExpiresInMs = 1_000 });
        await h.CreateChatAsync("c", "alice");
        var now = h.Time.NowMs();

        Assert.Equal(ErrorCode.ValidationFailed, (await h.Service.SendAsync(Text("c", "alice", "a", "12345")).Within()).Error);
        Assert.Equal(ErrorCode.ValidationFailed, (await h.Service.SendAsync(Text("c", "alice", "b", "1", expiresAt: now + 1_001)).Within()).Error);
        Assert.True((await h.Service.SendAsync(Text("c", "alice", "c", "1234", expiresAt: now + 1_000)).Within()).IsSuccess);
    }

    [Fact]
    public async Task Concurrent_senders_get_exactly_the_seqs_one_to_n_and_events_come_out_in_seq_order()
    {
        const int Senders = 8;
        const int PerSender = 200;
        await using var h = Start();
        var users = Enumerable.Range(0, Senders).Select(i => $"user{i}").ToArray();
        await h.CreateChatAsync("busy", users);

        var results = await Task.WhenAll(users.Select(user => Task.Run(async () =>
        {
            var mine = new List<SendResult>(PerSender);
            for (var i = 0; i < PerSender; i++)
            {
                mine.Add(await h.Service.SendAsync(Text("busy", user, $"{user}-{i}")));
            }

            return mine;
        }))).Within();

        var all = results.SelectMany(r => r).ToList();
        Assert.All(all, r => Assert.True(r.IsSuccess && !r.Duplicate, r.ErrorMessage));
        Assert.Equal(Enumerable.Range(1, Senders * PerSender).Select(i => (ulong)i), all.Select(r => r.Seq).Order());
        Assert.Equal(all.Count, all.Select(r => r.MessageId).Distinct().Count());

        // Each sender awaited its sends one by one, so its own seqs rise.
        Assert.All(results, mine => Assert.Equal(mine.Select(r => r.Seq).Order(), mine.Select(r => r.Seq)));

        await h.FlushAsync();
        var events = h.Events.Messages();
        Assert.Equal(Enumerable.Range(1, Senders * PerSender).Select(i => (ulong)i), events.Select(m => m.Seq));

        // Every accepted send reached the store exactly once; how sends were grouped into writes depends on
        // scheduling and is not asserted here (see Sends_queued_behind_a_commit_share_the_next_write).
        Assert.Equal(Senders * PerSender, h.Faults.AppendBatchSizes.Sum());
    }

    [Fact]
    public async Task A_removed_member_cannot_send_and_events_follow_commit_order()
    {
        await using var h = Start();
        await h.CreateChatAsync("c", "alice", "bob");

        var fromBob = await h.Service.SendAsync(Text("c", "bob", "b1", traceId: "trace-b1")).Within();
        Assert.True(fromBob.IsSuccess);

        Assert.True((await h.Service.RemoveMemberAsync(Tenant, "c", "bob").Within()).IsSuccess);
        Assert.False(await h.Service.IsMemberAsync(Tenant, "c", "bob").Within());
        Assert.Equal(ErrorCode.NotMember, (await h.Service.SendAsync(Text("c", "bob", "b2")).Within()).Error);

        var fromAlice = await h.Service.SendAsync(Text("c", "alice", "a1")).Within();
        Assert.Equal(2UL, fromAlice.Seq);

        // Removing again is idempotent and publishes nothing.
        Assert.True((await h.Service.RemoveMemberAsync(Tenant, "c", "bob").Within()).IsSuccess);

        await h.FlushAsync();
        var events = h.Events.Snapshot();
        Assert.Equal(
            [
                $"{EventTypes.MemberAdded}:alice",
                $"{EventTypes.MemberAdded}:bob",
                $"{EventTypes.MessageCreated}:1",
                $"{EventTypes.MemberRemoved}:bob",
                $"{EventTypes.MessageCreated}:2",
            ],
            events.Select(Describe));
        Assert.Equal(["alice"], await h.Store.GetMembersAsync(Tenant, "c").Within());
    }

    [Fact]
    public async Task MessageCreated_envelopes_carry_the_committed_message()
    {
        await using var h = Start();
        await h.CreateChatAsync("c", "alice");
        var expiresAt = h.Time.NowMs() + 60_000;

        var result = await h.Service.SendAsync(Text("c", "alice", "k1", "hi there", traceId: "trace-42", expiresAt: expiresAt)).Within();
        await h.FlushAsync();

        var envelope = h.Events.Snapshot().Single(e => e.EventType == EventTypes.MessageCreated);
        Assert.Equal(32, envelope.EventId.Length);
        Assert.Equal(EventTypes.SchemaVersion, envelope.SchemaVersion);
        Assert.Equal(1, envelope.SchemaVersion);
        Assert.Equal("trace-42", envelope.TraceId);
        Assert.Equal(Tenant, envelope.TenantId);
        Assert.Equal("c", envelope.ChatId);
        Assert.Equal(h.Time.NowMs(), envelope.OccurredAt);

        var message = Assert.IsType<MessageCreated>(envelope.Payload).Message;
        Assert.Equal(result.Seq, message.Seq);
        Assert.Equal(result.MessageId, message.MessageId);
        Assert.Equal(result.SentAt, message.SentAt);
        Assert.Equal(h.Time.NowMs(), message.SentAt);
        Assert.Equal("alice", message.SenderId);
        Assert.Equal("k1", message.ClientMessageId);
        Assert.Equal("text/plain", message.ContentType);
        Assert.Equal(expiresAt, message.ExpiresAt);
        Assert.Equal("hi there", Encoding.UTF8.GetString(message.Content.Span));
        Assert.True(Guid.TryParseExact(message.MessageId, "N", out var id));
        Assert.Equal(7, id.Version);

        var added = h.Events.Snapshot().Single(e => e.EventType == EventTypes.MemberAdded);
        Assert.Equal("alice", Assert.IsType<MemberAdded>(added.Payload).UserId);
        Assert.NotEqual(envelope.EventId, added.EventId);
    }

    [Fact]
    public async Task The_committed_message_keeps_the_content_it_was_handed_without_a_copy()
    {
        await using var h = Start();
        await h.CreateChatAsync("c", "alice");
        var buffer = Encoding.UTF8.GetBytes("original");

        Assert.True((await h.Service.SendAsync(Text("c", "alice", "k1") with { Content = buffer }).Within()).IsSuccess);
        await h.FlushAsync();

        var envelope = h.Events.Snapshot().Single(e => e.EventType == EventTypes.MessageCreated);
        var message = Assert.IsType<MessageCreated>(envelope.Payload).Message;
        Assert.True(message.Content.Equals(new ReadOnlyMemory<byte>(buffer)), "the event's message holds the caller's array");
        var stored = Assert.Single(await h.Store.ReadAfterAsync(Tenant, "c", 0, 10).Within());
        Assert.Equal("original", Encoding.UTF8.GetString(stored.Content.Span));
    }

    [Fact]
    public async Task Reusing_a_client_message_id_in_another_chat_is_an_idempotency_conflict()
    {
        await using var h = Start();
        await h.CreateChatAsync("a", "alice");
        await h.CreateChatAsync("b", "alice");

        Assert.True((await h.Service.SendAsync(Text("a", "alice", "k1")).Within()).IsSuccess);
        var conflict = await h.Service.SendAsync(Text("b", "alice", "k1")).Within();

        Assert.Equal(ErrorCode.IdempotencyConflict, conflict.Error);
        Assert.Equal(0UL, await h.Store.GetHeadAsync(Tenant, "b").Within());

        // The key is per sender: another sender may use it in chat b.
        await h.Service.AddMemberAsync(Tenant, "b", "bob").Within();
        Assert.Equal(1UL, (await h.Service.SendAsync(Text("b", "bob", "k1")).Within()).Seq);
    }

    [Fact]
    public async Task Reusing_a_key_for_another_payload_is_a_conflict_before_and_after_a_restart()
    {
        await using var h = Start();
        await h.CreateChatAsync("c", "alice");
        var expiry = h.Time.GetUtcNow().ToUnixTimeMilliseconds() + 60_000;
        var first = await h.Service.SendAsync(Text("c", "alice", "k1", "one", expiresAt: expiry)).Within();
        Assert.True(first.IsSuccess, first.ErrorMessage);

        async Task AssertAnswersAsync()
        {
            var retry = await h.Service.SendAsync(Text("c", "alice", "k1", "one", expiresAt: expiry)).Within();
            Assert.True(retry.Duplicate);
            Assert.Equal((first.Seq, first.MessageId), (retry.Seq, retry.MessageId));

            SendMessage[] others =
            [
                Text("c", "alice", "k1", "two", expiresAt: expiry),
                Text("c", "alice", "k1", "one", expiresAt: expiry + 1),
                Text("c", "alice", "k1", "one"),
                Text("c", "alice", "k1", "one", expiresAt: expiry) with { ContentType = "text/markdown" },
            ];
            foreach (var other in others)
            {
                var conflict = await h.Service.SendAsync(other).Within();
                Assert.Equal(ErrorCode.IdempotencyConflict, conflict.Error);
                Assert.Contains("different", conflict.ErrorMessage, StringComparison.Ordinal);
            }
        }

        await AssertAnswersAsync();
        await h.RestartAsync();
        await AssertAnswersAsync();

        var stored = Assert.Single(await h.Store.ReadAfterAsync(Tenant, "c", 0, 10).Within());
        Assert.Equal("one", Encoding.UTF8.GetString(stored.Content.Span));
    }

    [Fact]
    public async Task The_same_key_with_another_payload_in_one_batch_is_a_conflict()
    {
        await using var h = Start();
        await h.CreateChatAsync("a", "alice");

        var held = h.Faults.HoldNextAppend();
        var blocker = h.Service.SendAsync(Text("a", "alice", "first")).AsTask();
        await held.Within();

        var original = h.Service.SendAsync(Text("a", "alice", "k", "one")).AsTask();
        var changed = h.Service.SendAsync(Text("a", "alice", "k", "two")).AsTask();
        h.Faults.Release();

        Assert.Equal(1UL, (await blocker.Within()).Seq);
        Assert.Equal(2UL, (await original.Within()).Seq);
        Assert.Equal(ErrorCode.IdempotencyConflict, (await changed.Within()).Error);
        await h.FlushAsync();
        Assert.Equal(2, h.Events.Messages().Count);
    }

    [Fact]
    public async Task The_same_key_twice_in_one_batch_yields_one_message_and_a_duplicate()
    {
        await using var h = Start();
        await h.CreateChatAsync("a", "alice");
        await h.CreateChatAsync("b", "alice");

        // Hold the first commit so the next three sends queue up and land in one batch together.
        var held = h.Faults.HoldNextAppend();
        var blocker = h.Service.SendAsync(Text("a", "alice", "first")).AsTask();
        await held.Within();

        var original = h.Service.SendAsync(Text("a", "alice", "k")).AsTask();
        var again = h.Service.SendAsync(Text("a", "alice", "k")).AsTask();
        var elsewhere = h.Service.SendAsync(Text("b", "alice", "k")).AsTask();
        h.Faults.Release();

        Assert.Equal(1UL, (await blocker.Within()).Seq);
        var o = await original.Within();
        var d = await again.Within();
        Assert.Equal(2UL, o.Seq);
        Assert.False(o.Duplicate);
        Assert.True(d.Duplicate);
        Assert.Equal(o.Seq, d.Seq);
        Assert.Equal(o.MessageId, d.MessageId);
        Assert.Equal(ErrorCode.IdempotencyConflict, (await elsewhere.Within()).Error);

        Assert.Equal([1, 1], h.Faults.AppendBatchSizes);
        await h.FlushAsync();
        Assert.Equal(2, h.Events.Messages().Count);
    }

    [Fact]
    public async Task Sends_queued_behind_a_commit_share_the_next_write()
    {
        await using var h = Start();
        await h.CreateChatAsync("c", "alice", "bob");

        var held = h.Faults.HoldNextAppend();
        var first = h.Service.SendAsync(Text("c", "alice", "first")).AsTask();
        await held.Within();
        var queued = Enumerable.Range(0, 10).Select(i => h.Service.SendAsync(Text("c", i % 2 == 0 ? "alice" : "bob", $"q{i}")).AsTask()).ToList();
        h.Faults.Release();

        Assert.Equal(1UL, (await first.Within()).Seq);
        var results = await Task.WhenAll(queued).Within();

        // Queue order is seq order, and the ten went to the store in one synced write.
        Assert.Equal(Enumerable.Range(2, 10).Select(i => (ulong)i), results.Select(r => r.Seq));
        Assert.Equal([1, 10], h.Faults.AppendBatchSizes);
    }

    [Fact]
    public async Task A_publish_failure_is_reported_but_the_committed_send_still_succeeds()
    {
        var failures = new List<(string Type, Exception Error)>();
        await using var h = Start(new WriteServiceOptions { OnPublishError = (e, ex) => failures.Add((e.EventType, ex)) });
        await h.CreateChatAsync("c", "alice");
        await h.Bus.DisposeAsync().AsTask().Within(); // the bus refuses every publish from now on

        var result = await h.Service.SendAsync(Text("c", "alice", "k1")).Within();

        Assert.True(result.IsSuccess);
        Assert.Equal(1UL, await h.Store.GetHeadAsync(Tenant, "c").Within());
        var failure = Assert.Single(failures);
        Assert.Equal(EventTypes.MessageCreated, failure.Type);
        Assert.IsType<ObjectDisposedException>(failure.Error);
    }

    [Fact]
    public async Task A_failed_commit_fails_the_whole_batch_publishes_nothing_and_rolls_the_head_back()
    {
        await using var h = Start();
        await h.CreateChatAsync("c", "alice", "bob");
        Assert.Equal(1UL, (await h.Service.SendAsync(Text("c", "alice", "k0")).Within()).Seq);

        h.Faults.FailAppendsWith = new IOException("disk full");
        var failed = await Task.WhenAll(
            h.Service.SendAsync(Text("c", "alice", "k1")).AsTask(),
            h.Service.SendAsync(Text("c", "bob", "k2")).AsTask()).Within();
        Assert.All(failed, r => Assert.Equal(ErrorCode.Unavailable, r.Error));

        h.Faults.FailAppendsWith = null;
        var retried = await h.Service.SendAsync(Text("c", "bob", "k2")).Within();
        Assert.True(retried.IsSuccess);
        Assert.False(retried.Duplicate);
        Assert.Equal(2UL, retried.Seq);

        await h.FlushAsync();
        Assert.Equal([1UL, 2], h.Events.Messages().Select(m => m.Seq));
        Assert.Equal(["k0", "k2"], h.Events.Messages().Select(m => m.ClientMessageId));
    }

    [Fact]
    public async Task Membership_is_readable_and_changes_are_idempotent()
    {
        await using var h = Start();
        Assert.False(await h.Service.IsMemberAsync(Tenant, "c", "alice").Within());
        Assert.Empty(await h.Service.GetMembersAsync(Tenant, "c").Within());

        // Adding to a chat that does not exist is refused; creating it is the way in.
        Assert.Equal(ErrorCode.NotMember, (await h.Service.AddMemberAsync(Tenant, "c", "alice").Within()).Error);
        Assert.Equal(ErrorCode.ValidationFailed, (await h.Service.CreateChatAsync(Tenant, "c", []).Within()).Error);
        Assert.Equal(ErrorCode.ValidationFailed, (await h.Service.CreateChatAsync(Tenant, "c.x", ["alice"]).Within()).Error);
        Assert.Equal(ErrorCode.ValidationFailed, (await h.Service.AddMemberAsync(Tenant, "c", "has space").Within()).Error);

        await h.CreateChatAsync("c", "alice", "alice", "bob");
        await h.CreateChatAsync("c", "bob", "carol");
        Assert.True((await h.Service.AddMemberAsync(Tenant, "c", "dave").Within()).IsSuccess);
        Assert.True((await h.Service.AddMemberAsync(Tenant, "c", "dave").Within()).IsSuccess);

        Assert.Equal(["alice", "bob", "carol", "dave"], (await h.Service.GetMembersAsync(Tenant, "c").Within()).Order(StringComparer.Ordinal));
        Assert.True(await h.Service.IsMemberAsync(Tenant, "c", "carol").Within());
        Assert.False(await h.Service.IsMemberAsync(Tenant, "c", "mallory").Within());
        Assert.False(await h.Service.IsMemberAsync(Tenant, "c", "bad id").Within());

        await h.FlushAsync();
        Assert.Equal(
            ["alice", "bob", "carol", "dave"],
            h.Events.Snapshot().Where(e => e.EventType == EventTypes.MemberAdded).Select(e => ((MemberAdded)e.Payload).UserId));

        // A fresh service over the same store answers from the store (nothing cached yet).
        await h.RestartAsync();
        Assert.True(await h.Service.IsMemberAsync(Tenant, "c", "dave").Within());
        Assert.Equal(4, (await h.Service.GetMembersAsync(Tenant, "c").Within()).Count);
    }

    [Fact]
    public async Task Dispose_finishes_queued_work_then_refuses_new_commands()
    {
        await using var h = Start();
        await h.CreateChatAsync("c", "alice");

        var queued = Enumerable.Range(0, 50).Select(i => h.Service.SendAsync(Text("c", "alice", $"k{i}")).AsTask()).ToList();
        await h.Service.DisposeAsync().AsTask().Within();

        var results = await Task.WhenAll(queued).Within();
        Assert.All(results, r => Assert.True(r.IsSuccess, r.ErrorMessage));
        Assert.Equal(Enumerable.Range(1, 50).Select(i => (ulong)i), results.Select(r => r.Seq).Order());

        Assert.Equal(ErrorCode.Unavailable, (await h.Service.SendAsync(Text("c", "alice", "late")).Within()).Error);
        Assert.Equal(ErrorCode.Unavailable, (await h.Service.AddMemberAsync(Tenant, "c", "bob").Within()).Error);
        Assert.Equal(50UL, await h.Store.GetHeadAsync(Tenant, "c").Within());
    }

    [Fact]
    public async Task A_send_cancelled_before_it_is_queued_throws_and_commits_nothing()
    {
        await using var h = Start();
        await h.CreateChatAsync("c", "alice");
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => h.Service.SendAsync(Text("c", "alice", "k"), cts.Token).AsTask());
        Assert.Equal(0UL, await h.Store.GetHeadAsync(Tenant, "c").Within());
    }

    private static string Describe(EventEnvelope e) => e.Payload switch
    {
        MessageCreated m => $"{e.EventType}:{m.Message.Seq}",
        MemberAdded a => $"{e.EventType}:{a.UserId}",
        MemberRemoved r => $"{e.EventType}:{r.UserId}",
        _ => e.EventType,
    };
}
