using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using Gateway.Domain.Internal;
using Gateway.Domain.Ports;
using Gateway.Protocol;

namespace Gateway.Domain;

/// <summary>The commit loop: group commit of sends, membership changes in line, events in commit order.</summary>
public sealed partial class LocalWriteService
{
    private const string StoreFailedMessage = "the store could not commit; retry with the same clientMessageId";
    private const string NotMemberMessage = "the sender is not a member of the chat";
    private const string ConflictMessage = "clientMessageId was already used by this sender in another chat";
    private const string PayloadConflictMessage = "clientMessageId was already used by this sender for a different contentType, content or expiresAt";
    private const string InternalMessage = "internal error in the write service; retry with the same clientMessageId";

    private readonly int _maxBatchSize;

    // Loop-only state, reused across batches so that steady state allocates nothing per batch but the messages.
    private readonly List<PendingCommand> _batch;
    private readonly List<ChatMessage> _messages = [];
    private readonly List<SendCommand> _accepted = [];
    private readonly List<(SendCommand Command, int Original)> _inBatchDuplicates = [];
    private readonly Dictionary<IdempotencyKey, int> _batchKeys = [];

    // The commit thread sleeps on this while the queue is empty; 1 while it is (about to be) asleep.
    private readonly ManualResetEventSlim _wake = new(false);
    private int _commitIdle;

    /// <summary>
    /// Starts the commit loop on a thread of its own and returns its completion. A durable commit blocks in the
    /// store's fsync (RocksDB's synchronous WAL write: ~0.1-10 ms, more on a busy disk); on a thread-pool thread that
    /// would take a pool thread out for every commit, and on a server with one or two CPUs (where the pool starts
    /// with that many threads) queue every writer pump, socket completion and request behind the disk until the pool
    /// injects threads, about two per second: stalls of a second and more under a steady, modest load. A database's
    /// log writer has its own thread for the same reason.
    /// </summary>
    private Task StartCommitThread()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(static s => ((LocalWriteService)((object[])s!)[0]).RunCommitThread((TaskCompletionSource)((object[])s!)[1]))
        {
            IsBackground = true,
            Name = "gateway commit",
        };
        thread.Start(new object[] { this, done });
        return done.Task;
    }

    private void RunCommitThread(TaskCompletionSource done)
    {
        try
        {
            Run();
            done.SetResult();
        }
        catch (Exception e)
        {
            done.SetException(e);
        }
    }

    /// <summary>
    /// Drains the queue until it is completed and empty. Each pass takes every queued command (up to the batch
    /// size), so under load one fsync covers many sends, and with one caller it commits each send at once. Blocks
    /// its thread while idle (on <see cref="_wake"/>, set by producers, so waking it needs no pool thread) and while
    /// the store commits.
    /// </summary>
    private void Run()
    {
        var reader = _queue.Reader;
        while (true)
        {
            if (!reader.TryPeek(out _))
            {
                if (reader.Completion.IsCompleted)
                {
                    return; // completed and drained
                }

                // Dekker-style handshake with WakeCommitThread: publish "idle" with a full fence, then look again, so
                // a producer either sees the flag (and sets the event) or wrote before our second look.
                Interlocked.Exchange(ref _commitIdle, 1);
                _wake.Reset();
                if (!reader.TryPeek(out _) && !reader.Completion.IsCompleted)
                {
                    _wake.Wait();
                }

                Volatile.Write(ref _commitIdle, 0);
                continue;
            }

            while (_batch.Count < _maxBatchSize && reader.TryRead(out var command))
            {
                _batch.Add(command);
            }

            try
            {
                // Completes synchronously with RocksDB and the in-process bus; a store that really is asynchronous
                // (none today) would have its continuations on the pool while this thread waits.
                var pass = ProcessBatchAsync();
                if (!pass.IsCompletedSuccessfully)
                {
                    pass.AsTask().GetAwaiter().GetResult();
                }
            }
            catch (Exception)
            {
                // A bug, not a store failure (those are handled per segment). Never leave a caller hanging, and
                // forget cached chats so that the next batch starts again from what the store holds. Commands that
                // already completed keep their result (Complete ignores a second one).
                foreach (var command in _batch)
                {
                    command.CompleteFailed(ErrorCode.Internal, InternalMessage);
                }

                _chats.Clear();
                ResetSegment();
            }
            finally
            {
                _batch.Clear();
            }
        }
    }

    /// <summary>Called after a command was queued (or the queue completed): wakes the commit thread if it sleeps.</summary>
    private void WakeCommitThread()
    {
        // The full fence orders our queue write before the flag read (the other half of the handshake in Run).
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _commitIdle) != 0)
        {
            _wake.Set();
        }
    }

    /// <summary>
    /// Processes the batch in queue order. Sends accumulate into a segment that is committed with one store write;
    /// a membership change first commits the segment before it, so the durable order and the event order are both
    /// exactly the queue order. The async method completes synchronously when the store and bus do (RocksDB and
    /// the in-process bus always do), so no state machine is boxed per batch in the common case.
    /// </summary>
    private async ValueTask ProcessBatchAsync()
    {
        var now = NowMs();
        foreach (var command in _batch)
        {
            if (command.IsCompleted)
            {
                continue;
            }

            if (command.CancellationToken.IsCancellationRequested)
            {
                command.CompleteCanceled();
                continue;
            }

            if (command is SendCommand send)
            {
                try
                {
                    var prepare = PrepareSend(send, now);
                    if (!prepare.IsCompletedSuccessfully)
                    {
                        await prepare.ConfigureAwait(false);
                    }
                }
                catch (Exception)
                {
                    // A store read failed: this send cannot be decided now; the caller retries with the same key.
                    send.CompleteFailed(ErrorCode.Unavailable, StoreFailedMessage);
                }
            }
            else
            {
                await CommitSegmentAsync().ConfigureAwait(false);
                await ApplyAdminAsync((AdminCommand)command).ConfigureAwait(false);
                now = NowMs();
            }
        }

        await CommitSegmentAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Decides one send: rejected, duplicate, or accepted into the segment with the next seq. Synchronous when the
    /// chat is cached with its head and the store answers the idempotency lookup synchronously (RocksDB always
    /// does), so the steady state runs no per-command async state machine; the async paths are for a chat's first
    /// use and for stores that really are asynchronous.
    /// </summary>
    private ValueTask PrepareSend(SendCommand send, long now)
    {
        var m = send.Message;
        if (!_chats.TryGetValue(new ChatKey(m.TenantId, m.ChatId), out var chat) || !chat.HeadLoaded)
        {
            return PrepareFirstUseAsync(send, now);
        }

        if (!Authorize(send, chat) || IsBatchDuplicate(send))
        {
            return default;
        }

        var lookup = _store.GetIdempotencyAsync(m.TenantId, m.SenderId, m.ClientMessageId, CancellationToken.None);
        if (!lookup.IsCompletedSuccessfully)
        {
            return AcceptAfterLookupAsync(send, now, chat, lookup);
        }

        Accept(send, now, chat, lookup.Result);
        return default;
    }

    /// <summary>The first send to a chat since start (or since a failed commit): load members and head first.</summary>
    private async ValueTask PrepareFirstUseAsync(SendCommand send, long now)
    {
        var m = send.Message;
        var chatKey = new ChatKey(m.TenantId, m.ChatId);
        if (!_chats.TryGetValue(chatKey, out var chat))
        {
            chat = await LoadChatAsync(chatKey, CancellationToken.None).ConfigureAwait(false);
        }

        if (!Authorize(send, chat))
        {
            return;
        }

        if (!chat.HeadLoaded)
        {
            chat.Head = await _store.GetHeadAsync(m.TenantId, m.ChatId, CancellationToken.None).ConfigureAwait(false);
            chat.HeadLoaded = true;
        }

        if (IsBatchDuplicate(send))
        {
            return;
        }

        var record = await _store.GetIdempotencyAsync(m.TenantId, m.SenderId, m.ClientMessageId, CancellationToken.None).ConfigureAwait(false);
        Accept(send, now, chat, record);
    }

    private async ValueTask AcceptAfterLookupAsync(SendCommand send, long now, ChatState chat, ValueTask<IdempotencyRecord?> lookup) =>
        Accept(send, now, chat, await lookup.ConfigureAwait(false));

    /// <summary>Fails the send with <see cref="ErrorCode.NotMember"/> unless its sender is a member of an existing chat.</summary>
    private static bool Authorize(SendCommand send, [NotNullWhen(true)] ChatState? chat)
    {
        // Unknown chat and non-member are the same answer, so ids cannot be probed.
        if (chat is null || !chat.Members.Contains(send.Message.SenderId))
        {
            send.CompleteFailed(ErrorCode.NotMember, NotMemberMessage);
            return false;
        }

        return true;
    }

    /// <summary>
    /// True (and the send is settled) when its idempotency key is already used in this segment: a duplicate of
    /// that send, answered once it commits, or a conflict when the chat differs.
    /// </summary>
    private bool IsBatchDuplicate(SendCommand send)
    {
        var m = send.Message;
        if (!_batchKeys.TryGetValue(new IdempotencyKey(m.TenantId, m.SenderId, m.ClientMessageId), out var original))
        {
            return false;
        }

        var first = _messages[original];
        if (!string.Equals(first.ChatId, m.ChatId, StringComparison.Ordinal))
        {
            send.CompleteFailed(ErrorCode.IdempotencyConflict, ConflictMessage);
        }
        else if (!first.HasPayload(m.ContentType, send.Content.Span, m.ExpiresAt))
        {
            send.CompleteFailed(ErrorCode.IdempotencyConflict, PayloadConflictMessage);
        }
        else
        {
            _inBatchDuplicates.Add((send, original));
        }

        return true;
    }

    /// <summary>Answers a send whose key is already durable, or assigns the next seq and adds it to the segment.</summary>
    private void Accept(SendCommand send, long now, ChatState chat, IdempotencyRecord? record)
    {
        var m = send.Message;
        if (record is not null)
        {
            // Already durable: a retry (same chat, same payload) is answered at once with the original coordinates. (The
            // store computes a new send's digest once, when it writes the record; this one only when a key is reused.)
            if (record.IsRetry(m.ChatId, PayloadDigest.Compute(m.ContentType, send.Content.Span, m.ExpiresAt)))
            {
                send.Complete(SendResult.Ok(record.Seq, record.MessageId, record.SentAt, duplicate: true));
            }
            else
            {
                send.CompleteFailed(ErrorCode.IdempotencyConflict,
                    string.Equals(record.ChatId, m.ChatId, StringComparison.Ordinal) ? PayloadConflictMessage : ConflictMessage);
            }

            return;
        }

        // Dense: the loop is the only writer of this chat, so head + 1 is free. Rolled back on a failed commit.
        chat.Head++;
        var message = new ChatMessage(
            m.TenantId,
            m.ChatId,
            chat.Head,
            Guid.CreateVersion7().ToString("N"),
            m.SenderId,
            now,
            m.ContentType,
            send.Content,
            m.ExpiresAt,
            m.ClientMessageId);
        _batchKeys.Add(new IdempotencyKey(m.TenantId, m.SenderId, m.ClientMessageId), _messages.Count);
        _messages.Add(message);
        _accepted.Add(send);
    }

    /// <summary>
    /// Makes the segment durable with ONE synced store write, then publishes its events in seq order, then
    /// completes the callers. If the write fails, every send of the segment fails with
    /// <see cref="ErrorCode.Unavailable"/>, nothing is published, and the touched chats are dropped from the cache
    /// so their heads are read again from the store.
    /// </summary>
    private async ValueTask CommitSegmentAsync()
    {
        if (_messages.Count == 0)
        {
            return;
        }

        using var commit = GatewayTracing.Enabled ? StartCommitSpan() : null;
        var started = Stopwatch.GetTimestamp();
        try
        {
            var append = _store.AppendAsync(_messages, CancellationToken.None);
            if (!append.IsCompletedSuccessfully)
            {
                await append.ConfigureAwait(false);
            }

            commit?.Stop(); // durable: the span ends here, before the events are published
        }
        catch (Exception)
        {
            commit?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, "the store could not commit");
            foreach (var message in _messages)
            {
                Evict(new ChatKey(message.TenantId, message.ChatId));
            }

            foreach (var send in _accepted)
            {
                send.CompleteFailed(ErrorCode.Unavailable, StoreFailedMessage);
            }

            foreach (var (send, _) in _inBatchDuplicates)
            {
                send.CompleteFailed(ErrorCode.Unavailable, StoreFailedMessage);
            }

            ResetSegment();
            return;
        }

        // Monotonic, this process: the gateway that fans the event out measures delivery lag against it.
        var committedAt = Stopwatch.GetTimestamp();
        WriteMetrics.RecordCommit(Stopwatch.GetElapsedTime(started, committedAt).TotalSeconds, _messages.Count);
        for (var i = 0; i < _messages.Count; i++)
        {
            var message = _messages[i];
            var publish = Publish(new EventEnvelope(
                NewEventId(),
                EventTypes.MessageCreated,
                message.SentAt,
                EventTypes.SchemaVersion,
                _accepted[i].Message.TraceId,
                message.TenantId,
                message.ChatId,
                new MessageCreated(message))
            { CommittedAt = committedAt });
            if (!publish.IsCompletedSuccessfully)
            {
                await publish.ConfigureAwait(false);
            }
        }

        for (var i = 0; i < _messages.Count; i++)
        {
            var message = _messages[i];
            _accepted[i].Complete(SendResult.Ok(message.Seq, message.MessageId, message.SentAt, duplicate: false));
        }

        foreach (var (send, original) in _inBatchDuplicates)
        {
            var message = _messages[original];
            send.Complete(SendResult.Ok(message.Seq, message.MessageId, message.SentAt, duplicate: true));
        }

        ResetSegment();
    }

    /// <summary>The commit span of the segment: the child of its first traced send, linked to every traced send.</summary>
    private System.Diagnostics.Activity? StartCommitSpan() =>
        GatewayTracing.StartBatch(GatewayTracing.Commit, System.Diagnostics.ActivityKind.Internal, _accepted.Select(static s => s.Message.TraceId));

    private void ResetSegment()
    {
        // Clearing is safe: the store is done with the list once AppendAsync has completed, and the published events
        // and results hold the ChatMessage instances themselves, not the list.
        _messages.Clear();
        _accepted.Clear();
        _inBatchDuplicates.Clear();
        _batchKeys.Clear();
    }

    /// <summary>Applies one membership change: durable first, then the cached snapshot, then the events.</summary>
    private async ValueTask ApplyAdminAsync(AdminCommand command)
    {
        var key = new ChatKey(command.TenantId, command.ChatId);
        try
        {
            if (!_chats.TryGetValue(key, out var chat))
            {
                chat = await LoadChatAsync(key, CancellationToken.None).ConfigureAwait(false);
            }

            if (command.Kind == AdminKind.RemoveMember)
            {
                await RemoveAsync(command, key, chat).ConfigureAwait(false);
            }
            else
            {
                await AddAsync(command, key, chat).ConfigureAwait(false);
            }
        }
        catch (Exception)
        {
            // The store may or may not hold the change: forget the chat so the next use reads the truth again.
            Evict(key);
            command.CompleteFailed(ErrorCode.Unavailable, StoreFailedMessage);
        }
    }

    private async ValueTask AddAsync(AdminCommand command, ChatKey key, ChatState? chat)
    {
        if (chat is null && command.Kind == AdminKind.AddMember)
        {
            command.CompleteFailed(ErrorCode.NotMember, ChatMissingMessage);
            return;
        }

        var current = chat?.Members ?? [];
        List<string>? added = null;
        foreach (var user in command.UserIds)
        {
            if (!current.Contains(user) && !(added?.Contains(user, StringComparer.Ordinal) ?? false))
            {
                (added ??= []).Add(user);
            }
        }

        if (added is null)
        {
            // Idempotent: nothing new. A chat that does not exist always adds someone (members is never empty).
            command.Complete(AdminResult.Ok);
            return;
        }

        var now = NowMs();
        await _store.AddMembersAsync(key.TenantId, key.ChatId, added, now, CancellationToken.None).ConfigureAwait(false);
        var members = current.Union(added);
        if (chat is null)
        {
            _chats[key] = new ChatState(members);
        }
        else
        {
            chat.Members = members;
        }

        foreach (var user in added)
        {
            await Publish(new EventEnvelope(
                NewEventId(), EventTypes.MemberAdded, now, EventTypes.SchemaVersion, null, key.TenantId, key.ChatId, new MemberAdded(user))).ConfigureAwait(false);
        }

        command.Complete(AdminResult.Ok);
    }

    private async ValueTask RemoveAsync(AdminCommand command, ChatKey key, ChatState? chat)
    {
        var user = command.UserIds[0];
        if (chat is null || !chat.Members.Contains(user))
        {
            command.Complete(AdminResult.Ok);
            return;
        }

        await _store.RemoveMemberAsync(key.TenantId, key.ChatId, user, CancellationToken.None).ConfigureAwait(false);
        chat.Members = chat.Members.Remove(user);
        await Publish(new EventEnvelope(
            NewEventId(), EventTypes.MemberRemoved, NowMs(), EventTypes.SchemaVersion, null, key.TenantId, key.ChatId, new MemberRemoved(user))).ConfigureAwait(false);
        command.Complete(AdminResult.Ok);
    }

    /// <summary>
    /// Publishes after the change is durable; synchronous when the bus is (the in-process bus always is). A bus
    /// failure cannot undo the commit: it is reported, and subscribers repair the gap from the store by seq.
    /// </summary>
    private ValueTask Publish(EventEnvelope envelope)
    {
        ValueTask publish;
        try
        {
            publish = _bus.PublishAsync(envelope, CancellationToken.None);
        }
        catch (Exception ex)
        {
            ReportPublishError(envelope, ex);
            return default;
        }

        return publish.IsCompletedSuccessfully ? default : AwaitPublishAsync(publish, envelope);
    }

    private async ValueTask AwaitPublishAsync(ValueTask publish, EventEnvelope envelope)
    {
        try
        {
            await publish.ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            ReportPublishError(envelope, ex);
        }
    }

    private void ReportPublishError(EventEnvelope envelope, Exception ex)
    {
        try
        {
            _onPublishError?.Invoke(envelope, ex);
        }
        catch (Exception)
        {
            // The error sink failed too. The change is committed regardless; the loop must not fail its callers for it.
        }
    }

    private static string NewEventId() => Guid.CreateVersion7().ToString("N");
}
