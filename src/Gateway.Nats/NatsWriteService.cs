using System.Collections.Concurrent;
using Gateway.Domain;
using Gateway.Domain.Ports;
using Gateway.Protocol;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;

namespace Gateway.Nats;

/// <summary>
/// The write service of the <c>writer</c> role: the commit point is an append to the chat's JetStream log subject with
/// a per-chat compare-and-set (docs/ARCHITECTURE.md §3, distributed mode). Any number of writers can serve any chat, with no leases.
/// </summary>
/// <remarks>
/// <para><b>Per chat state.</b> Each writer caches, per chat, the log position of the chat's last event
/// (<c>LastStreamSeq</c>), its dense message head, whether it exists and its members. Every decision taken from that cache
/// (the next seq, "is the sender a member") is validated by the CAS: the append carries
/// <c>Nats-Expected-Last-Subject-Sequence = LastStreamSeq</c>, so if any other writer appended anything to the chat since,
/// JetStream refuses, and the writer reloads the chat (waits for its projector to reach the chat's last event, reads the
/// store) and tries again. So seqs stay dense with no duplicates however many writers race, and a send by a user removed
/// on another writer fails.</para>
/// <para><b>One event per event number.</b> The CAS alone is not enough on a clustered stream: nats-server 2.9 checks
/// <c>Nats-Expected-Last-Subject-Sequence</c> before replicating, against a state without the appends still in flight,
/// so two writers racing from one chat state can both be stored (measured: 144 of 200 concurrent pairs on a 3-node
/// cluster). Every append therefore also claims the chat's next event number as its <c>Nats-Msg-Id</c>
/// (<see cref="Subjects.EventClaim"/>): JetStream's duplicate check does account for appends in flight, so the second
/// claim is refused (0 of 200) and its writer learns what changed like any loser of the CAS.</para>
/// <para><b>Idempotency.</b> A send is new unless the store's idempotency record (kept forever) or this writer's own
/// appends that are not projected yet know its key. After learning of another writer's appends (a lost race), the writer
/// first lets its projection reach them, so a retry whose first attempt went to another writer finds it.</para>
/// <para><b>Serialization.</b> One writer handles one chat's commands one at a time (the CAS needs the previous append's
/// position), so one chat's throughput is about one JetStream round trip per message; different chats run in parallel.</para>
/// </remarks>
public sealed class NatsWriteService : IWriteService, IMembership
{
    /// <summary>Attempts per command when other writers keep winning the chat's CAS. Each loss costs one log read (or a
    /// projector wait when membership changed) and a jittered pause of up to attempt × 1 ms, so 32 attempts are at most
    /// ~0.5 s of pauses: enough for a loser to get its turn between a busy winner's appends.</summary>
    private const int MaxCasAttempts = 32;
    private const string NotMemberMessage = "the sender is not a member of the chat";
    private const string ChatMissingMessage = "the chat does not exist";
    private const string ConflictMessage = "clientMessageId was already used by this sender in another chat";
    private const string PayloadConflictMessage = "clientMessageId was already used by this sender for a different contentType, content or expiresAt";
    private const string UnavailableMessage = "the commit log is unavailable; retry with the same clientMessageId";
    private const string ContentionMessage = "too much contention on this chat; retry with the same clientMessageId";

    private readonly JetStreamLog _log;
    private readonly Projector _projector;
    private readonly IChatStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly int _maxContentBytes;
    private readonly long _maxExpiresInMs;
    private readonly TimeSpan _projectionWait;
    private readonly ConcurrentDictionary<(string, string), ChatLog> _chats = new();

    /// <summary>Creates the service.</summary>
    public NatsWriteService(JetStreamLog log, Projector projector, IChatStore store, WriteServiceOptions options, NatsOptions natsOptions, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(natsOptions);
        _log = log;
        _projector = projector;
        _store = store;
        _time = time;
        _logger = logger;
        _maxContentBytes = options.MaxContentBytes;
        _maxExpiresInMs = options.MaxExpiresInMs;
        _projectionWait = TimeSpan.FromMilliseconds(natsOptions.RequestTimeoutMs);
    }

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <inheritdoc />
    public async ValueTask<SendResult> SendAsync(SendMessage command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (!Validation.TryValidateSend(command, NowMs, _maxContentBytes, _maxExpiresInMs, out var error))
        {
            return SendResult.Fail(ErrorCode.ValidationFailed, error);
        }

        var chat = Chat(command.TenantId, command.ChatId);
        await NatsMetrics.WaitCountedAsync(chat.Gate, cancellationToken).ConfigureAwait(false);
        try
        {
            for (var attempt = 0; attempt < MaxCasAttempts; attempt++)
            {
                await EnsureLoadedAsync(chat, cancellationToken).ConfigureAwait(false);
                if (await FindOriginalAsync(chat, command, cancellationToken).ConfigureAwait(false) is { } original)
                {
                    return original;
                }

                if (!chat.Members.Contains(command.SenderId))
                {
                    return SendResult.Fail(ErrorCode.NotMember, NotMemberMessage);
                }

                var now = NowMs;
                var message = new ChatMessage(command.TenantId, command.ChatId, chat.Head + 1, Guid.CreateVersion7().ToString("N"), command.SenderId, now,
                    command.ContentType, command.Content, command.ExpiresAt, command.ClientMessageId);
                var e = new LogEvent(LogEventKind.MessageCreated, Guid.CreateVersion7().ToString("N"), now, command.TraceId, command.TenantId, command.ChatId, message, [],
                    chat.EventNo + 1, message.Seq);
                var issued = System.Diagnostics.Stopwatch.GetTimestamp();
                var outcome = await _log.AppendAsync(chat.Subject, WireCodec.EncodeEvent(e), chat.LastStreamSeq,
                    Subjects.EventClaim(command.TenantId, command.ChatId, e.EventNo), cancellationToken, command.TraceId, command.TraceState).ConfigureAwait(false);
                NatsMetrics.RecordAppend(outcome.Status, issued);
                switch (outcome.Status)
                {
                    case PublishStatus.Stored:
                        chat.Head = message.Seq;
                        chat.EventNo++;
                        chat.LastStreamSeq = outcome.StreamSeq;
                        chat.CheckedAt = issued; // the CAS proved the state current when the append was issued
                        var result = SendResult.Ok(message.Seq, message.MessageId, message.SentAt, duplicate: false);
                        chat.RememberOwn(message, result, outcome.StreamSeq);
                        return result;
                    case PublishStatus.Duplicate or PublishStatus.WrongLastSequence:
                        // Another append took this event number first (a duplicate claim), or the chat moved on.
                        await AfterLostRaceAsync(chat, attempt, cancellationToken).ConfigureAwait(false);
                        continue;
                    default:
                        chat.Loaded = false; // the outcome is unknown: the retry (same key) finds out
                        _logger.LogWarning("Append to {Subject} failed: {Error}", chat.Subject, outcome.Error);
                        return SendResult.Fail(ErrorCode.Unavailable, UnavailableMessage);
                }
            }

            return SendResult.Fail(ErrorCode.Unavailable, ContentionMessage);
        }
        catch (Exception e) when (e is NatsException or TimeoutException or StoreUnavailableException)
        {
            chat.Loaded = false;
            _logger.LogWarning(e, "Send to {Subject} failed", chat.Subject);
            return SendResult.Fail(ErrorCode.Unavailable, UnavailableMessage);
        }
        finally
        {
            chat.Gate.Release();
        }
    }

    /// <inheritdoc />
    public ValueTask<AdminResult> CreateChatAsync(string tenantId, string chatId, IReadOnlyCollection<string> members, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(members);
        if (ValidateChat(tenantId, chatId) is { } error)
        {
            return new ValueTask<AdminResult>(error);
        }

        if (members.Count == 0)
        {
            return new ValueTask<AdminResult>(AdminResult.Fail(ErrorCode.ValidationFailed, Validation.Messages.Members));
        }

        if (members.Any(u => !Validation.IsValidUserId(u)))
        {
            return new ValueTask<AdminResult>(AdminResult.Fail(ErrorCode.ValidationFailed, Validation.Messages.UserId));
        }

        return ChangeMembersAsync(tenantId, chatId, [.. members], LogEventKind.MembersAdded, mustExist: false, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask<AdminResult> AddMemberAsync(string tenantId, string chatId, string userId, CancellationToken cancellationToken = default) =>
        ValidateSingle(tenantId, chatId, userId) is { } error
            ? new ValueTask<AdminResult>(error)
            : ChangeMembersAsync(tenantId, chatId, [userId], LogEventKind.MembersAdded, mustExist: true, cancellationToken);

    /// <inheritdoc />
    public ValueTask<AdminResult> RemoveMemberAsync(string tenantId, string chatId, string userId, CancellationToken cancellationToken = default) =>
        ValidateSingle(tenantId, chatId, userId) is { } error
            ? new ValueTask<AdminResult>(error)
            : ChangeMembersAsync(tenantId, chatId, [userId], LogEventKind.MemberRemoved, mustExist: false, cancellationToken);

    /// <inheritdoc />
    /// <remarks>Answers from the chat's state as of a log read issued after this call began, so a removal committed by
    /// any writer before the call is seen. Concurrent checks of one chat share that read (see <see cref="FreshAsync{T}"/>).</remarks>
    /// <exception cref="NatsException">JetStream unreachable.</exception>
    public async ValueTask<bool> IsMemberAsync(string tenantId, string chatId, string userId, CancellationToken cancellationToken = default)
    {
        if (!Validation.IsValidId(tenantId) || !Validation.IsValidId(chatId) || !Validation.IsValidUserId(userId))
        {
            return false;
        }

        return await FreshAsync(tenantId, chatId, members => members.Contains(userId), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <exception cref="NatsException">JetStream unreachable.</exception>
    public async ValueTask<IReadOnlyList<string>> GetMembersAsync(string tenantId, string chatId, CancellationToken cancellationToken = default)
    {
        if (!Validation.IsValidId(tenantId) || !Validation.IsValidId(chatId))
        {
            return [];
        }

        return await FreshAsync(tenantId, chatId, members => (IReadOnlyList<string>)[.. members], cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Waits until this writer's history store holds every event the chat's log had when this call began, so that a
    /// read that follows sees every acknowledged message (catch-up after a broker outage or while the projector lags).
    /// </summary>
    /// <exception cref="NatsException">JetStream unreachable.</exception>
    /// <exception cref="TimeoutException">The projector did not get there in time.</exception>
    public async Task WaitForHistoryAsync(string tenantId, string chatId, CancellationToken cancellationToken)
    {
        var subject = _log.Subjects.Log(tenantId, chatId);
        var (last, _) = await _log.GetLastAsync(_log.Subjects.StreamOf(tenantId, chatId), subject, cancellationToken).ConfigureAwait(false);
        await _projector.WaitForAsync(tenantId, chatId, last, _projectionWait, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads the chat's members as of a log position learned AFTER this call began. Callers queue on the chat's gate; the
    /// first to get it reads the chat's last log position, and every caller that had arrived before that read was issued
    /// can use its answer. So a burst of N subscribes to one chat costs one JetStream read per round, not N, and no
    /// caller is answered from a state older than its own arrival (what revocation needs).
    /// </summary>
    private async Task<T> FreshAsync<T>(string tenantId, string chatId, Func<HashSet<string>, T> read, CancellationToken cancellationToken)
    {
        var arrived = System.Diagnostics.Stopwatch.GetTimestamp();
        var chat = Chat(tenantId, chatId);
        await chat.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!chat.Loaded || chat.CheckedAt < arrived)
            {
                var issued = System.Diagnostics.Stopwatch.GetTimestamp();
                var (last, data) = await _log.GetLastAsync(chat.Stream, chat.Subject, cancellationToken).ConfigureAwait(false);
                if (!chat.Loaded || chat.LastStreamSeq != last)
                {
                    await LoadAsync(chat, last, data, cancellationToken).ConfigureAwait(false);
                }

                chat.CheckedAt = issued;
            }

            return read(chat.Members);
        }
        catch
        {
            chat.Loaded = false;
            throw;
        }
        finally
        {
            chat.Gate.Release();
        }
    }

    private async ValueTask<AdminResult> ChangeMembersAsync(string tenantId, string chatId, string[] users, LogEventKind kind, bool mustExist, CancellationToken cancellationToken)
    {
        var chat = Chat(tenantId, chatId);
        await NatsMetrics.WaitCountedAsync(chat.Gate, cancellationToken).ConfigureAwait(false);
        try
        {
            for (var attempt = 0; attempt < MaxCasAttempts; attempt++)
            {
                await EnsureLoadedAsync(chat, cancellationToken).ConfigureAwait(false);

                if (mustExist && !chat.Exists)
                {
                    return AdminResult.Fail(ErrorCode.NotMember, ChatMissingMessage);
                }

                // Idempotent: only the users whose state changes make an event.
                var changed = kind == LogEventKind.MembersAdded
                    ? users.Distinct().Where(u => !chat.Members.Contains(u)).ToArray()
                    : users.Where(chat.Members.Contains).ToArray();
                if (changed.Length == 0)
                {
                    return AdminResult.Ok;
                }

                var now = NowMs;
                var e = new LogEvent(kind, Guid.CreateVersion7().ToString("N"), now, null, tenantId, chatId, null, changed, chat.EventNo + 1, chat.Head);
                var issued = System.Diagnostics.Stopwatch.GetTimestamp();
                var outcome = await _log.AppendAsync(chat.Subject, WireCodec.EncodeEvent(e), chat.LastStreamSeq, Subjects.EventClaim(tenantId, chatId, e.EventNo), cancellationToken)
                    .ConfigureAwait(false);
                NatsMetrics.RecordAppend(outcome.Status, issued);
                switch (outcome.Status)
                {
                    case PublishStatus.Stored:
                        chat.LastStreamSeq = outcome.StreamSeq;
                        chat.EventNo++;
                        chat.CheckedAt = issued;
                        chat.Exists = true;
                        if (kind == LogEventKind.MembersAdded)
                        {
                            chat.Members.UnionWith(changed);
                        }
                        else
                        {
                            chat.Members.ExceptWith(changed);
                        }

                        return AdminResult.Ok;
                    case PublishStatus.Duplicate or PublishStatus.WrongLastSequence:
                        await AfterLostRaceAsync(chat, attempt, cancellationToken).ConfigureAwait(false);
                        continue;
                    default:
                        chat.Loaded = false;
                        _logger.LogWarning("Membership append to {Subject} failed: {Error}", chat.Subject, outcome.Error);
                        return AdminResult.Fail(ErrorCode.Unavailable, "the commit log is unavailable; retry");
                }
            }

            return AdminResult.Fail(ErrorCode.Unavailable, "too much contention on this chat; retry");
        }
        catch (Exception e) when (e is NatsException or TimeoutException or StoreUnavailableException)
        {
            chat.Loaded = false;
            _logger.LogWarning(e, "Membership change on {Subject} failed", chat.Subject);
            return AdminResult.Fail(ErrorCode.Unavailable, "the commit log is unavailable; retry");
        }
        finally
        {
            chat.Gate.Release();
        }
    }

    /// <summary>
    /// The result of an earlier send with the same idempotency key, if there is one. Three places together hold every
    /// committed send: the store's idempotency record (everything projected), this writer's own appends not projected
    /// yet, and, for appends by other writers that this writer has learned of (a lost race), the store again once the
    /// projection has reached them.
    /// </summary>
    private async Task<SendResult?> FindOriginalAsync(ChatLog chat, SendMessage command, CancellationToken cancellationToken)
    {
        if (chat.ForeignUntil > 0)
        {
            await _projector.WaitForAsync(chat.TenantId, chat.ChatId, chat.ForeignUntil, _projectionWait, cancellationToken).ConfigureAwait(false);
            chat.ForeignUntil = 0;
        }

        // Forget only what was projected BEFORE the store is asked: an own append projected in between is then still
        // remembered here, never in neither place.
        chat.ForgetProjected(_projector.AppliedThrough(chat.TenantId, chat.ChatId));
        var record = await _store.GetIdempotencyAsync(command.TenantId, command.SenderId, command.ClientMessageId, cancellationToken).ConfigureAwait(false);
        if (record is not null)
        {
            return record.IsRetry(command.ChatId, PayloadDigest.Of(command))
                ? SendResult.Ok(record.Seq, record.MessageId, record.SentAt, duplicate: true)
                : SendResult.Fail(ErrorCode.IdempotencyConflict, record.ChatId == command.ChatId ? PayloadConflictMessage : ConflictMessage);
        }

        // Own appends are of this chat (the map is per chat): only the payload can differ.
        return chat.FindOwn(command.SenderId, command.ClientMessageId) is { } own
            ? own.Message.HasPayload(command.ContentType, command.Content.Span, command.ExpiresAt)
                ? own.Result with { Duplicate = true }
                : SendResult.Fail(ErrorCode.IdempotencyConflict, PayloadConflictMessage)
            : null;
    }

    /// <summary>Loads the chat's state as of its last log event if it is not cached.</summary>
    /// <exception cref="NatsException">JetStream unreachable.</exception>
    /// <exception cref="TimeoutException">The projector is too far behind.</exception>
    private async Task EnsureLoadedAsync(ChatLog chat, CancellationToken cancellationToken)
    {
        if (!chat.Loaded)
        {
            var issued = System.Diagnostics.Stopwatch.GetTimestamp();
            var (last, data) = await _log.GetLastAsync(chat.Stream, chat.Subject, cancellationToken).ConfigureAwait(false);
            await LoadAsync(chat, last, data, cancellationToken).ConfigureAwait(false);
            chat.CheckedAt = issued;
        }
    }

    /// <summary>Waits until the projector has applied the chat's log up to <paramref name="lastStreamSeq"/>, then reads the
    /// chat from the store: that state is exactly the chat as of that log event.</summary>
    /// <remarks>The CAS only proves that no event was appended after <paramref name="lastStreamSeq"/>; the next seq comes
    /// from the head read here. So the head must be the log's own: the last event names the chat's head after it. A store
    /// BEHIND that head (a projection that missed entries) fails the load rather than let a seq be issued twice. A store
    /// AHEAD of it only means the projection already applied later entries of the chat (appended since the log was
    /// read): the load starts again from the log's new last entry.</remarks>
    /// <exception cref="ProjectionUnavailableException">The store's head is behind the log's, or the chat kept moving.</exception>
    private async Task LoadAsync(ChatLog chat, ulong lastStreamSeq, byte[]? lastEvent, CancellationToken cancellationToken)
    {
        chat.Loaded = false;
        for (var attempt = 0; ; attempt++)
        {
            var last = lastEvent is null ? null : WireCodec.DecodeEvent(Payload.Of(lastEvent));
            await _projector.WaitForAsync(chat.TenantId, chat.ChatId, lastStreamSeq, _projectionWait, cancellationToken).ConfigureAwait(false);
            var head = await _store.GetHeadAsync(chat.TenantId, chat.ChatId, cancellationToken).ConfigureAwait(false);
            if (last is { EventNo: > 0 } && head < last.Head)
            {
                _logger.LogError("Chat {Subject}: the history store's head {StoreHead} is behind the log's head {LogHead} at stream seq {Seq}; refusing to append",
                    chat.Subject, head, last.Head, lastStreamSeq);
                throw new ProjectionUnavailableException($"the history store's head of {chat.Subject} ({head}) is behind the log's ({last.Head})");
            }

            if (last is { EventNo: > 0 } && head > last.Head)
            {
                if (attempt >= 4)
                {
                    throw new ProjectionUnavailableException($"chat {chat.Subject} kept changing while it was loaded; retry");
                }

                (lastStreamSeq, lastEvent) = await _log.GetLastAsync(chat.Stream, chat.Subject, cancellationToken).ConfigureAwait(false);
                continue;
            }

            chat.Exists = await _store.ChatExistsAsync(chat.TenantId, chat.ChatId, cancellationToken).ConfigureAwait(false);
            chat.Members = [.. await _store.GetMembersAsync(chat.TenantId, chat.ChatId, cancellationToken).ConfigureAwait(false)];
            chat.Head = head;
            chat.EventNo = last?.EventNo ?? 0;
            chat.LastStreamSeq = lastStreamSeq;
            chat.Loaded = true;
            return;
        }
    }

    /// <summary>
    /// After losing the CAS: learn what the winner appended. One read of the chat's last event usually suffices: when the
    /// event numbers advanced exactly as much as the message head, only messages were appended, so the members are
    /// unchanged and the head and position come from that event. Otherwise (membership changed, or an event from before
    /// event numbers) the chat is reloaded from the store once the projector has caught up. A short random pause lets a
    /// busy winner's append go first rather than colliding again.
    /// </summary>
    private async Task AfterLostRaceAsync(ChatLog chat, int attempt, CancellationToken cancellationToken)
    {
        var (last, data) = await _log.GetLastAsync(chat.Stream, chat.Subject, cancellationToken).ConfigureAwait(false);
        var e = data is null ? null : WireCodec.DecodeEvent(Payload.Of(data));
        if (e is { EventNo: > 0 } && chat.EventNo > 0 && e.EventNo > chat.EventNo && e.EventNo - chat.EventNo == e.Head - chat.Head)
        {
            chat.EventNo = e.EventNo;
            chat.Head = e.Head;
            chat.LastStreamSeq = last;
        }
        else
        {
            await LoadAsync(chat, last, data, cancellationToken).ConfigureAwait(false);
        }

        // Another writer appended up to `last`: before this writer decides a send is new, its store must hold those
        // entries (one of them may be this very send, retried here after the first attempt went elsewhere).
        chat.ForeignUntil = last;
        chat.CheckedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        await Task.Delay(TimeSpan.FromMicroseconds(Random.Shared.Next(0, 1000 * (attempt + 1))), cancellationToken).ConfigureAwait(false);
    }

    private ChatLog Chat(string tenantId, string chatId) =>
        _chats.GetOrAdd((tenantId, chatId), static (key, log) => new ChatLog(key.Item1, key.Item2, log.Subjects), _log);

    private static AdminResult? ValidateChat(string tenantId, string chatId) =>
        !Validation.IsValidId(tenantId) ? AdminResult.Fail(ErrorCode.ValidationFailed, Validation.Messages.TenantId)
        : !Validation.IsValidId(chatId) ? AdminResult.Fail(ErrorCode.ValidationFailed, Validation.Messages.ChatId)
        : null;

    private static AdminResult? ValidateSingle(string tenantId, string chatId, string userId) =>
        ValidateChat(tenantId, chatId) ?? (Validation.IsValidUserId(userId) ? null : AdminResult.Fail(ErrorCode.ValidationFailed, Validation.Messages.UserId));

    /// <summary>One chat's cached log state. Read and written only under <see cref="Gate"/>.</summary>
    private sealed class ChatLog(string tenantId, string chatId, Subjects subjects)
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);

        public string TenantId { get; } = tenantId;

        public string ChatId { get; } = chatId;

        public string Subject { get; } = subjects.Log(tenantId, chatId);

        public string Stream { get; } = subjects.StreamOf(tenantId, chatId);

        public bool Loaded { get; set; }

        public bool Exists { get; set; }

        public ulong Head { get; set; }

        public ulong LastStreamSeq { get; set; }

        /// <summary>The chat's event number of its last event (see <see cref="LogEvent.EventNo"/>).</summary>
        public ulong EventNo { get; set; }

        /// <summary>Stopwatch time at which a log read (or a successful CAS) that proved this state current was issued.</summary>
        public long CheckedAt { get; set; }

        public HashSet<string> Members { get; set; } = new(StringComparer.Ordinal);

        /// <summary>A stream seq up to which entries by other writers must be projected before an idempotency check (0: none).</summary>
        public ulong ForeignUntil { get; set; }

        // This writer's own appends that its projection may not have written yet: a retry of one of them must find it
        // here, since neither the store nor JetStream's dedup (which claims event numbers, not keys) knows it yet.
        // Each with its message, so that a reuse of the key for another payload is a conflict here too (compared byte for
        // byte on a hit: no digest per send; the message is held only until it is projected).
        private readonly Dictionary<(string Sender, string ClientMessageId), (SendResult Result, ChatMessage Message)> _own = [];
        private readonly Queue<((string, string) Key, ulong StreamSeq)> _ownOrder = new();

        public void RememberOwn(ChatMessage message, SendResult result, ulong streamSeq)
        {
            _own[(message.SenderId, message.ClientMessageId)] = (result, message);
            _ownOrder.Enqueue(((message.SenderId, message.ClientMessageId), streamSeq));
        }

        public (SendResult Result, ChatMessage Message)? FindOwn(string senderId, string clientMessageId) =>
            _own.TryGetValue((senderId, clientMessageId), out var own) ? own : null;

        /// <summary>Drops the own appends the projection has written (the store answers for them from now on).</summary>
        public void ForgetProjected(ulong appliedThrough)
        {
            while (_ownOrder.TryPeek(out var head) && head.StreamSeq <= appliedThrough)
            {
                _ownOrder.Dequeue();
                _own.Remove(head.Key);
            }
        }
    }
}
