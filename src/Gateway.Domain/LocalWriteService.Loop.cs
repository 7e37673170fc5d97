using Gateway.Domain.Internal;
using Gateway.Protocol;

namespace Gateway.Domain;

/// <summary>The commit loop: group commit of sends, membership changes in line, events in commit order.</summary>
public sealed partial class LocalWriteService
{
    private const string StoreFailedMessage = "the store could not commit; retry with the same clientMessageId";
    private const string NotMemberMessage = "the sender is not a member of the chat";
    private const string ConflictMessage = "clientMessageId was already used by this sender in another chat";

    private readonly int _maxBatchSize;

    // Loop-only state, reused across batches so that steady state allocates nothing per batch but the messages.
    private readonly List<PendingCommand> _batch;
    private readonly List<ChatMessage> _messages = [];
    private readonly List<SendCommand> _accepted = [];
    private readonly List<(SendCommand Command, int Original)> _inBatchDuplicates = [];
    private readonly Dictionary<IdempotencyKey, int> _batchKeys = [];

    /// <summary>
    /// Drains the queue until it is completed and empty. Each pass takes every queued command (up to the batch
    /// size), so under load one fsync covers many sends, and with one caller it commits each send at once.
    /// </summary>
    private async Task RunAsync()
    {
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (_batch.Count < _maxBatchSize && reader.TryRead(out var command))
            {
                _batch.Add(command);
            }

            try
            {
                await ProcessBatchAsync().ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                // A bug, not a store failure (those are handled per segment). Never leave a caller hanging, and
                // forget cached chats so that the next batch starts again from what the store holds.
                foreach (var command in _batch)
                {
                    command.CompleteFailed(ErrorCode.Internal, ex.Message);
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
                    await PrepareSendAsync(send, now).ConfigureAwait(false);
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

    /// <summary>Decides one send: rejected, duplicate, or accepted into the segment with the next seq.</summary>
    private async ValueTask PrepareSendAsync(SendCommand send, long now)
    {
        var m = send.Message;
        var chatKey = new ChatKey(m.TenantId, m.ChatId);
        if (!_chats.TryGetValue(chatKey, out var chat))
        {
            chat = await LoadChatAsync(chatKey, CancellationToken.None).ConfigureAwait(false);
        }

        // Unknown chat and non-member are the same answer, so ids cannot be probed.
        if (chat is null || !chat.Members.Contains(m.SenderId))
        {
            send.CompleteFailed(ErrorCode.NotMember, NotMemberMessage);
            return;
        }

        var idempotencyKey = new IdempotencyKey(m.TenantId, m.SenderId, m.ClientMessageId);
        if (_batchKeys.TryGetValue(idempotencyKey, out var original))
        {
            // The same key twice in one segment: the second is a duplicate of the first once that one commits.
            if (string.Equals(_messages[original].ChatId, m.ChatId, StringComparison.Ordinal))
            {
                _inBatchDuplicates.Add((send, original));
            }
            else
            {
                send.CompleteFailed(ErrorCode.IdempotencyConflict, ConflictMessage);
            }

            return;
        }

        var lookup = _store.GetIdempotencyAsync(m.TenantId, m.SenderId, m.ClientMessageId, CancellationToken.None);
        var record = lookup.IsCompletedSuccessfully ? lookup.Result : await lookup.ConfigureAwait(false);
        if (record is not null)
        {
            // Already durable: answer at once with the original coordinates.
            if (string.Equals(record.ChatId, m.ChatId, StringComparison.Ordinal))
            {
                send.Complete(SendResult.Ok(record.Seq, record.MessageId, record.SentAt, duplicate: true));
            }
            else
            {
                send.CompleteFailed(ErrorCode.IdempotencyConflict, ConflictMessage);
            }

            return;
        }

        if (!chat.HeadLoaded)
        {
            var head = _store.GetHeadAsync(m.TenantId, m.ChatId, CancellationToken.None);
            chat.Head = head.IsCompletedSuccessfully ? head.Result : await head.ConfigureAwait(false);
            chat.HeadLoaded = true;
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
        _batchKeys.Add(idempotencyKey, _messages.Count);
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

        try
        {
            var append = _store.AppendAsync(_messages, CancellationToken.None);
            if (!append.IsCompletedSuccessfully)
            {
                await append.ConfigureAwait(false);
            }
        }
        catch (Exception)
        {
            foreach (var message in _messages)
            {
                _chats.TryRemove(new ChatKey(message.TenantId, message.ChatId), out _);
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

        for (var i = 0; i < _messages.Count; i++)
        {
            var message = _messages[i];
            await PublishAsync(new EventEnvelope(
                NewEventId(),
                EventTypes.MessageCreated,
                message.SentAt,
                EventTypes.SchemaVersion,
                _accepted[i].Message.TraceId,
                message.TenantId,
                message.ChatId,
                new MessageCreated(message))).ConfigureAwait(false);
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
            _chats.TryRemove(key, out _);
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
            await PublishAsync(new EventEnvelope(
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
        await PublishAsync(new EventEnvelope(
            NewEventId(), EventTypes.MemberRemoved, NowMs(), EventTypes.SchemaVersion, null, key.TenantId, key.ChatId, new MemberRemoved(user))).ConfigureAwait(false);
        command.Complete(AdminResult.Ok);
    }

    /// <summary>Publishes after the change is durable. A bus failure cannot undo the commit: it is reported, and
    /// subscribers repair the gap from the store by seq.</summary>
    private async ValueTask PublishAsync(EventEnvelope envelope)
    {
        try
        {
            var publish = _bus.PublishAsync(envelope, CancellationToken.None);
            if (!publish.IsCompletedSuccessfully)
            {
                await publish.ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            _onPublishError?.Invoke(envelope, ex);
        }
    }

    private static string NewEventId() => Guid.CreateVersion7().ToString("N");
}
