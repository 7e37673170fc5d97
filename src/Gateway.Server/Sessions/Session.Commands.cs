using System.Buffers;
using System.Diagnostics;
using Gateway.Domain;
using Gateway.Protocol;
using Gateway.Server.Auth;
using Gateway.Server.Fanout;
using Gateway.WebSockets;

namespace Gateway.Server.Sessions;

/// <summary>Client frame handlers.</summary>
internal sealed partial class Session
{
    /// <summary>Upper bound of content bytes in one HistoryPage frame, so a page never dwarfs the outbound queue
    /// (1 MiB by default): 256 KiB is 8 maximal messages or a full page of short ones.</summary>
    private const int MaxHistoryPageBytes = 256 * 1024;

    private ValueTask HandleSend(in ClientFrame f)
    {
        var receivedAt = Stopwatch.GetTimestamp();

        // Lengths are checked before anything is copied out of the pipe; the domain validates the rest.
        var o = _services.Options;
        if (!TryTakeOrRefuse(RateKind.Send, f.RequestId, "send"))
        {
            GatewayMetrics.SendAnswered(http: false, ErrorCode.RateLimited, receivedAt);
            return default;
        }

        if (f.ChatId.Length > ProtocolConstants.MaxChatIdBytes || f.ClientMessageId.Length > ProtocolConstants.MaxClientMessageIdBytes ||
            f.ContentType.Length > ProtocolConstants.MaxContentTypeBytes || f.Content.Length > o.MaxContentBytes)
        {
            SendError(f.RequestId, ErrorCode.ValidationFailed, "a field is longer than its limit (see proto/PROTOCOL.md)");
            GatewayMetrics.SendAnswered(http: false, ErrorCode.ValidationFailed, receivedAt);
            return default;
        }

        // The trace context of the frame (optional; an invalid one is ignored, PROTOCOL.md §4.1). Nothing is read or
        // allocated for a send without one while nothing listens to the Gateway source.
        string? traceParent = null, traceState = null;
        if (!f.TraceParent.IsEmpty)
        {
            TraceContext.TryRead(f.TraceParent, f.TraceState, out traceParent, out traceState);
        }

        var span = StartSendSpan(traceParent, traceState);

        // The one copy of the content: the pipe reuses its buffer after this read. The write service owns this array from
        // here (IWriteService.SendAsync): embedded, it is the committed message's content (store, event, fanout frame);
        // distributed, the request to a writer is encoded from it. No later step copies this array.
        var command = new SendMessage(TenantId, DecodeUtf8(f.ChatId), UserId, DecodeUtf8(f.ClientMessageId), DecodeUtf8(f.ContentType),
            f.Content.ToArray(), f.ExpiresAt, GatewayTracing.Propagate(span, traceParent))
        { TraceState = GatewayTracing.PropagateState(span, traceState) };
        var requestId = f.RequestId;

        // Bounded sends in flight per connection: when all slots are taken the receive loop waits, which stops
        // reading the socket and pushes back on the client through TCP.
        var slots = _sendSlots ??= new SemaphoreSlim(o.MaxInFlightSends, o.MaxInFlightSends);
        return slots.Wait(0) ? StartSend(command, requestId, span, receivedAt) : new ValueTask(WaitSlotThenSendAsync(command, requestId, span, receivedAt));
    }

    /// <summary>The server span of a WebSocket send (null when nothing listens). It ends when the send is answered, on
    /// whatever thread that is, so it is not left as <see cref="System.Diagnostics.Activity.Current"/> of the receive loop.</summary>
    private System.Diagnostics.Activity? StartSendSpan(string? traceParent, string? traceState)
    {
        if (!GatewayTracing.Enabled)
        {
            return null;
        }

        var previous = System.Diagnostics.Activity.Current;
        var span = GatewayTracing.Start(GatewayTracing.Send, System.Diagnostics.ActivityKind.Server, traceParent, traceState);
        if (span is not null)
        {
            System.Diagnostics.Activity.Current = previous;
            span.SetTag(GatewayTracing.TransportTag, "ws");
            span.SetTag(GatewayTracing.TenantTag, TenantId);
        }

        return span;
    }

    private async Task WaitSlotThenSendAsync(SendMessage command, uint requestId, System.Diagnostics.Activity? span, long receivedAt)
    {
        try
        {
            await _sendSlots!.WaitAsync(Connection.Closing).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            GatewayTracing.StopSend(span, SendResult.Fail(ErrorCode.Unavailable, "the connection closed before the send went out"));
            return; // the connection is closing; the client retries with the same clientMessageId
        }

        await StartSend(command, requestId, span, receivedAt).ConfigureAwait(false);
    }

    private ValueTask StartSend(SendMessage command, uint requestId, System.Diagnostics.Activity? span, long receivedAt)
    {
        span?.SetTag(GatewayTracing.ChatTag, command.ChatId);
        ValueTask<SendResult> pending;
        try
        {
            pending = _services.Writer.SendAsync(command, CancellationToken.None);
        }
        catch (Exception e)
        {
            _sendSlots!.Release();
            _services.Logger.LogError(e, "Send failed");
            GatewayTracing.StopSend(span, SendResult.Fail(ErrorCode.Internal, e.Message));
            SendError(requestId, ErrorCode.Internal, "internal error; retry with the same clientMessageId");
            GatewayMetrics.SendAnswered(http: false, ErrorCode.Internal, receivedAt);
            return default;
        }

        if (pending.IsCompletedSuccessfully)
        {
            _sendSlots!.Release();
            GatewayTracing.StopSend(span, pending.Result);
            CompleteSend(requestId, command.ChatId, pending.Result, receivedAt);
        }
        else
        {
            _ = AwaitSendAsync(pending, requestId, command.ChatId, span, receivedAt);
        }

        return default;
    }

    private async Task AwaitSendAsync(ValueTask<SendResult> pending, uint requestId, string chatId, System.Diagnostics.Activity? span, long receivedAt)
    {
        SendResult result;
        try
        {
            result = await pending.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            _services.Logger.LogError(e, "Send failed");
            result = SendResult.Fail(ErrorCode.Internal, "internal error; retry with the same clientMessageId");
        }
        finally
        {
            _sendSlots!.Release();
        }

        GatewayTracing.StopSend(span, result);
        CompleteSend(requestId, chatId, result, receivedAt);
    }

    private void CompleteSend(uint requestId, string chatId, in SendResult result, long receivedAt)
    {
        if (!result.IsSuccess)
        {
            SendError(requestId, result.Error, result.ErrorMessage ?? result.Error.ToString());
            GatewayMetrics.SendAnswered(http: false, result.Error, receivedAt);
            return;
        }

        var frame = OutboundFrame.Rent(128);
        ServerFrameWriter.WriteSendAck(frame, requestId, chatId, result.Seq, result.MessageId!, result.SentAt, result.Duplicate);
        Enqueue(frame);
        GatewayMetrics.SendAnswered(http: false, ErrorCode.None, receivedAt);
    }

    private ValueTask HandleSubscribe(in ClientFrame f)
    {
        if (!TryTakeOrRefuse(RateKind.Subscribe, f.RequestId, "subscribe"))
        {
            return default;
        }

        if (f.ItemCount > _services.Options.MaxChatsPerSubscribe)
        {
            SendError(f.RequestId, ErrorCode.LimitExceeded, $"at most {_services.Options.MaxChatsPerSubscribe} chats per Subscribe");
            return default;
        }

        var items = new (string? ChatId, ulong AfterSeq)[f.ItemCount];
        var reader = new SubscribeItemReader(f);
        for (var i = 0; reader.TryNext(out var chatId, out var afterSeq); i++)
        {
            items[i] = (chatId.Length <= ProtocolConstants.MaxChatIdBytes ? DecodeUtf8(chatId) : null, afterSeq);
        }

        return new ValueTask(SubscribeAsync(f.RequestId, items));
    }

    /// <summary>Subscribes to each chat in turn, answers with one Subscribed frame, then starts the catch-ups.</summary>
    private async Task SubscribeAsync(uint requestId, (string? ChatId, ulong AfterSeq)[] items)
    {
        var catchUps = CatchUps;
        var results = new SubscribeResult[items.Length];
        var started = new List<ChatSubscription>(items.Length);
        for (var i = 0; i < items.Length; i++)
        {
            var (chatId, afterSeq) = items[i];
            if (chatId is null || !Validation.IsValidId(chatId))
            {
                results[i] = new SubscribeResult(chatId ?? "", ErrorCode.ValidationFailed, 0);
                continue;
            }

            var subscription = new ChatSubscription(catchUps, TenantId, chatId, afterSeq);
            switch (TakeTableSlot(subscription))
            {
                case TableSlot.SessionClosed:
                    return;
                case TableSlot.Full:
                    results[i] = new SubscribeResult(chatId, ErrorCode.LimitExceeded, 0);
                    continue;
            }

            results[i] = await RegisterAsync(subscription).ConfigureAwait(false);
            if (results[i].Code == ErrorCode.None)
            {
                started.Add(subscription);
            }
        }

        AnswerRevokedAsNotMember(results, started);
        var frame = OutboundFrame.Rent(32 + (items.Length * 80));
        ServerFrameWriter.WriteSubscribed(frame, requestId, results);
        Enqueue(frame);
        foreach (var s in started)
        {
            s.StartCatchUp();
        }
    }

    /// <summary>What <see cref="TakeTableSlot"/> found.</summary>
    private enum TableSlot
    {
        /// <summary>The subscription is in the table (replacing any to the same chat).</summary>
        Taken,

        /// <summary>The table is at <see cref="GatewayOptions.MaxSubscriptionsPerConnection"/>.</summary>
        Full,

        /// <summary>The session is over: nothing more is answered.</summary>
        SessionClosed,
    }

    /// <summary>Puts <paramref name="subscription"/> in the table; a previous subscription to the chat ends (re-subscribing
    /// restarts the chat from the new cursor).</summary>
    private TableSlot TakeTableSlot(ChatSubscription subscription)
    {
        ChatSubscription? previous;
        lock (_sync)
        {
            if (_closed != 0)
            {
                return TableSlot.SessionClosed;
            }

            previous = _subs.Find(subscription.ChatId);
            if (previous is null && _subs.Count >= _services.Options.MaxSubscriptionsPerConnection)
            {
                return TableSlot.Full;
            }

            _subs.Set(subscription);
        }

        if (previous is not null)
        {
            previous.Close();
            _services.Registry.Remove(previous);
        }

        return TableSlot.Taken;
    }

    /// <summary>Registers the subscription for live events, then checks membership and reads the head. A failure or a
    /// refusal drops the subscription again.</summary>
    private async Task<SubscribeResult> RegisterAsync(ChatSubscription subscription)
    {
        // Register first, check membership second: a removal that commits concurrently is either seen by
        // this check or finds the registered subscription and revokes it. Nothing is delivered before
        // catch-up starts, which is after this check.
        var chatId = subscription.ChatId;
        bool member;
        ulong head;
        try
        {
            await _services.Registry.AddAsync(subscription, Connection.Closing).ConfigureAwait(false);
            member = await _services.Membership.IsMemberAsync(TenantId, chatId, UserId).ConfigureAwait(false);
            head = member ? await _services.History.GetHeadAsync(TenantId, chatId).ConfigureAwait(false) : 0;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A store fault fails this chat, not the connection: the client retries the Subscribe.
            _services.Logger.LogWarning(e, "Subscribe of {Chat} failed for session {Session}", chatId, SessionId);
            Drop(subscription);
            return new SubscribeResult(chatId, ErrorCode.Unavailable, 0);
        }

        if (!member)
        {
            Drop(subscription);
            return new SubscribeResult(chatId, ErrorCode.NotMember, 0);
        }

        return new SubscribeResult(chatId, ErrorCode.None, head);
    }

    /// <summary>A removal that landed while this frame was being processed has already sent Revoked for its chat: answer
    /// NotMember for it rather than an "ok" that no catch-up or CaughtUp would ever follow.</summary>
    private static void AnswerRevokedAsNotMember(SubscribeResult[] results, List<ChatSubscription> started)
    {
        for (var i = 0; i < results.Length; i++)
        {
            if (results[i].Code == ErrorCode.None && started.Find(s => s.ChatId == results[i].ChatId) is { IsClosed: true } closed)
            {
                started.Remove(closed);
                results[i] = new SubscribeResult(results[i].ChatId, ErrorCode.NotMember, 0);
            }
        }
    }

    private void Drop(ChatSubscription subscription)
    {
        lock (_sync)
        {
            _subs.RemoveExact(subscription);
        }

        subscription.Close();
        _services.Registry.Remove(subscription);
    }

    private ValueTask HandleUnsubscribe(in ClientFrame f)
    {
        if (f.ItemCount > _services.Options.MaxChatsPerSubscribe)
        {
            SendError(f.RequestId, ErrorCode.LimitExceeded, $"at most {_services.Options.MaxChatsPerSubscribe} chats per Unsubscribe");
            return default;
        }

        var reader = new SubscribeItemReader(f);
        while (reader.TryNext(out var rawChatId, out _))
        {
            if (rawChatId.Length > ProtocolConstants.MaxChatIdBytes)
            {
                continue;
            }

            ChatSubscription? subscription;
            var chatId = DecodeUtf8(rawChatId);
            lock (_sync)
            {
                subscription = _subs.Remove(chatId);
            }

            if (subscription is not null)
            {
                subscription.Close();
                _services.Registry.Remove(subscription);
            }
        }

        var frame = OutboundFrame.Rent(16);
        ServerFrameWriter.WriteUnsubscribed(frame, f.RequestId);
        Enqueue(frame);
        return default;
    }

    private ValueTask HandleHistory(in ClientFrame f)
    {
        if (!TryTakeOrRefuse(RateKind.History, f.RequestId, "history"))
        {
            return default;
        }

        var chatId = f.ChatId.Length <= ProtocolConstants.MaxChatIdBytes ? DecodeUtf8(f.ChatId) : null;
        if (chatId is null || !Validation.IsValidId(chatId) || f.Limit is 0 or > ProtocolConstants.MaxHistoryPage)
        {
            SendError(f.RequestId, ErrorCode.ValidationFailed, $"chatId must be a valid id and limit 1..{ProtocolConstants.MaxHistoryPage}");
            return default;
        }

        return new ValueTask(HistoryAsync(f.RequestId, chatId, f.BeforeSeq, (int)f.Limit));
    }

    private async Task HistoryAsync(uint requestId, string chatId, ulong beforeSeq, int limit)
    {
        IReadOnlyList<ChatMessage> rows;
        try
        {
            if (!await _services.Membership.IsMemberAsync(TenantId, chatId, UserId).ConfigureAwait(false))
            {
                SendError(requestId, ErrorCode.NotMember, "not a member of this chat");
                return;
            }

            // One extra row tells whether there is more.
            rows = await _services.History.ReadBeforeAsync(TenantId, chatId, beforeSeq, limit + 1).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _services.Logger.LogWarning(e, "History of {Chat} failed for session {Session}", chatId, SessionId);
            SendError(requestId, ErrorCode.Unavailable, "history is unavailable; retry");
            return;
        }

        var count = Math.Min(rows.Count, limit);
        var fields = new MessageFields[count];
        var bytes = 0;
        var taken = 0;
        for (; taken < count; taken++)
        {
            bytes += rows[taken].Content.Length;
            if (taken > 0 && bytes > MaxHistoryPageBytes)
            {
                break;
            }

            fields[taken] = MessageFrames.ToFields(rows[taken]);
        }

        var frame = OutboundFrame.Rent(64 + bytes + (taken * 128));
        ServerFrameWriter.WriteHistoryPage(frame, requestId, chatId, fields.AsSpan(0, taken), rows.Count > taken);
        Enqueue(frame);
    }

    private ValueTask HandleTyping(in ClientFrame f)
    {
        var chatId = f.ChatId.Length <= ProtocolConstants.MaxChatIdBytes ? DecodeUtf8(f.ChatId) : null;
        if (chatId is null || !Validation.IsValidId(chatId))
        {
            SendError(f.RequestId, ErrorCode.ValidationFailed, "chatId must be a valid id");
            return default;
        }

        // Over the limit typing is dropped without an answer: an error per keystroke would only be noise.
        if (!_services.Limits.TryTake(_user, RateKind.Typing, out _))
        {
            _services.Metrics.RateLimited.Add(1, new KeyValuePair<string, object?>("kind", "typing"));
            return default;
        }

        var member = _services.Membership.IsMemberAsync(TenantId, chatId, UserId);
        return member.IsCompletedSuccessfully ? PublishTyping(f.RequestId, chatId, member.Result) : new ValueTask(PublishTypingAsync(f.RequestId, chatId, member));
    }

    private async Task PublishTypingAsync(uint requestId, string chatId, ValueTask<bool> member) =>
        await PublishTyping(requestId, chatId, await member.ConfigureAwait(false)).ConfigureAwait(false);

    private ValueTask PublishTyping(uint requestId, string chatId, bool member)
    {
        if (!member)
        {
            SendError(requestId, ErrorCode.NotMember, "not a member of this chat");
        }
        else
        {
            _services.Registry.PublishTyping(TenantId, chatId, UserId);
        }

        return default;
    }

    private ValueTask HandleRefreshToken(in ClientFrame f)
    {
        // Not rate limited (PROTOCOL.md §7.10): a refused refresh could only make a connection miss its closeAt.
        // Awaited, not blocked on: a token with an unknown key id may wait for a key fetch (completes inline otherwise).
        var token = DecodeUtf8(f.Token);
        var requestId = f.RequestId;
        var validation = _services.Auth.ValidateAsync(token);
        return validation.IsCompletedSuccessfully
            ? CompleteRefresh(requestId, validation.Result)
            : new ValueTask(CompleteRefreshAsync(requestId, validation));
    }

    private async Task CompleteRefreshAsync(uint requestId, ValueTask<(Principal? Principal, string? Failure)> validation) =>
        await CompleteRefresh(requestId, await validation.ConfigureAwait(false)).ConfigureAwait(false);

    private ValueTask CompleteRefresh(uint requestId, (Principal? Principal, string? Failure) validation)
    {
        var (principal, failure) = validation;
        if (principal is null || principal.TenantId != TenantId || principal.UserId != UserId)
        {
            // The connection keeps its old token and deadline.
            SendError(requestId, ErrorCode.Unauthenticated, failure ?? "the token names another user or tenant");
            return default;
        }

        ScheduleTokenTimeline(principal.ExpiresAt);
        var frame = OutboundFrame.Rent(32);
        ServerFrameWriter.WriteTokenRefreshed(frame, requestId, principal.ExpiresAt);
        Enqueue(frame);
        return default;
    }
}
