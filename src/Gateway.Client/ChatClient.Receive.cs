using System.Buffers;
using System.Net.WebSockets;
using Gateway.Client.Internal;
using Gateway.Protocol;

namespace Gateway.Client;

public sealed partial class ChatClient
{
    // Most server frames (acks, small messages) fit 16 KiB; larger ones grow the buffer by doubling.
    private const int InitialReceiveBufferBytes = 16 * 1024;

    /// <summary>
    /// Reads whole messages (joining fragments into one pooled buffer), decodes them and dispatches them, until the
    /// connection ends. Never throws: the result says how it ended.
    /// </summary>
    private async Task<ConnectionEnd> ReceiveLoopAsync(Connection conn)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(InitialReceiveBufferBytes);
        try
        {
            while (true)
            {
                var count = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    if (count == buffer.Length)
                    {
                        if (buffer.Length >= _options.MaxReceiveMessageBytes)
                        {
                            return await CloseForAsync(conn, WebSocketCloseStatus.MessageTooBig, "message too big").ConfigureAwait(false);
                        }

                        var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, _options.MaxReceiveMessageBytes));
                        buffer.AsSpan(0, count).CopyTo(bigger);
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = bigger;
                    }

                    result = await conn.Socket.ReceiveAsync(buffer.AsMemory(count), conn.Token).ConfigureAwait(false);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        return new ConnectionEnd(conn.Socket.CloseStatus, conn.Socket.CloseStatusDescription, null);
                    }

                    if (result.MessageType == WebSocketMessageType.Text)
                    {
                        return await CloseForAsync(conn, WebSocketCloseStatus.InvalidMessageType, "text frames are not chatgw.v1").ConfigureAwait(false);
                    }

                    count += result.Count;
                }
                while (!result.EndOfMessage);

                ServerFrame? frame;
                try
                {
                    // Decode copies what it keeps (strings, content), so the buffer is reused for the next message.
                    frame = ServerFrame.Decode(new ReadOnlySequence<byte>(buffer, 0, count));
                }
                catch (FormatException e)
                {
                    Log($"connection {conn.Number}: {e.Message}");
                    return await CloseForAsync(conn, WebSocketCloseStatus.InvalidPayloadData, "malformed frame").ConfigureAwait(false);
                }

                if (frame is null)
                {
                    continue; // unknown type from a newer server: ignored by contract
                }

                if (!conn.Hello.IsCompleted)
                {
                    if (frame is not HelloFrame hello)
                    {
                        return await CloseForAsync(conn, WebSocketCloseStatus.ProtocolError, "expected Hello first").ConfigureAwait(false);
                    }

                    conn.SetHello(hello);
                    continue;
                }

                await DispatchAsync(conn, frame).ConfigureAwait(false);
            }
        }
        catch (Exception e)
        {
            return new ConnectionEnd(null, null, e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            conn.FailHello(new ChatClientException(ErrorCode.Unavailable, "The connection ended before Hello."));
        }
    }

    /// <summary>Closes a connection whose server broke the protocol; the run loop then reconnects.</summary>
    private async Task<ConnectionEnd> CloseForAsync(Connection conn, WebSocketCloseStatus status, string reason)
    {
        Log($"connection {conn.Number}: closing, {reason}");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        try
        {
            await conn.SendLock.WaitAsync(timeout.Token).ConfigureAwait(false);
            try
            {
                await conn.Socket.CloseOutputAsync(status, reason, timeout.Token).ConfigureAwait(false);
            }
            finally
            {
                conn.SendLock.Release();
            }
        }
        catch (Exception e) when (IsSocketFailure(e))
        {
            // The connection is being dropped anyway.
        }

        return new ConnectionEnd(null, null, new WebSocketException(WebSocketError.Faulted, "Server protocol violation: " + reason));
    }

    private ValueTask DispatchAsync(Connection conn, ServerFrame frame)
    {
        switch (frame)
        {
            case MessageFrame message:
                return OnMessage(conn, message) ? _events.Writer.WriteAsync(message, _disposeToken) : default;
            case SendAckFrame ack:
                if (conn.Pending.TryRemove(ack.RequestId, out var pending) && pending is PendingSend send)
                {
                    send.Result.TrySetResult(ack);
                }

                return default;
            case ErrorFrame error:
                OnError(conn, error);
                return default;
            case SubscribedFrame subscribed:
                return OnSubscribedAsync(conn, subscribed);
            case UnsubscribedFrame or HistoryPageFrame or TokenRefreshedFrame:
                CompleteCall(conn, frame);
                return default;
            case UserTypingFrame typing:
                OnUserTyping(typing);
                return default;
            case TokenExpiringFrame expiring:
                OnTokenExpiring(conn, expiring);
                return default;
            case DrainFrame drain:
                OnDrain(conn, drain);
                return default;
            case CaughtUpFrame caughtUp:
                return OnCaughtUp(conn, caughtUp) ? _events.Writer.WriteAsync(caughtUp, _disposeToken) : default;
            case RevokedFrame revoked:
                lock (_chatsLock)
                {
                    _chats.Remove(revoked.ChatId); // forgotten: not re-subscribed on reconnect
                }

                return _events.Writer.WriteAsync(revoked, _disposeToken);
            default:
                Log($"connection {conn.Number}: ignored unexpected {frame.Type}");
                return default;
        }
    }

    private static uint RequestIdOf(ServerFrame frame) => frame switch
    {
        UnsubscribedFrame u => u.RequestId,
        HistoryPageFrame h => h.RequestId,
        SubscribedFrame s => s.RequestId,
        TokenRefreshedFrame t => t.RequestId,
        _ => 0,
    };

    private PendingCall? CompleteCall(Connection conn, ServerFrame frame)
    {
        if (conn.Pending.TryRemove(RequestIdOf(frame), out var pending) && pending is PendingCall call)
        {
            if (call.Answer == frame.Type)
            {
                call.Complete(frame);
                return call;
            }

            call.Fail(new ChatClientException(ErrorCode.InvalidFrame, $"Expected {call.Answer}, the server answered {frame.Type}."));
        }

        Log($"connection {conn.Number}: {frame.Type} for unknown request {RequestIdOf(frame)}");
        return null;
    }

    private void OnError(Connection conn, ErrorFrame error)
    {
        if (error.RequestId == 0 || !conn.Pending.TryRemove(error.RequestId, out var pending))
        {
            Log($"connection {conn.Number}: error {error.Code} for request {error.RequestId}: {error.Message}");
            return;
        }

        // Only RateLimited carries a retry hint; 0 means the server gave none.
        TimeSpan? retryAfter = error.RetryAfterMs > 0 ? TimeSpan.FromMilliseconds(error.RetryAfterMs) : null;
        switch (pending)
        {
            case PendingSend send when ChatClientException.IsRetryableCode(error.Code):
                Log($"connection {conn.Number}: send {send.ClientMessageId} got retryable {error.Code}; retrying after {retryAfter?.ToString() ?? "back-off"}");
                ScheduleSendRetry(send, retryAfter);
                break;
            case PendingSend send:
                send.Result.TrySetException(new ChatClientException(error.Code, error.Message) { RetryAfter = retryAfter });
                break;
            case SubscribeCall { Resume: true } resume when ChatClientException.IsRetryableCode(error.Code):
                // The client's own re-subscribe was refused for now (e.g. rate-limited right after a drain sent
                // everyone back at once): the chats are not subscribed on this connection, so try again later.
                Log($"connection {conn.Number}: re-subscribe of {resume.Cursors.Length} chat(s) got {error.Code}; again after {retryAfter?.ToString() ?? "back-off"}");
                _ = ResubscribeLaterAsync(conn, resume, retryAfter ?? BackoffDelay(resume.Attempt));
                resume.Fail(new ChatClientException(error.Code, error.Message) { RetryAfter = retryAfter });
                break;
            case PendingCall call:
                call.Fail(new ChatClientException(error.Code, error.Message) { RetryAfter = retryAfter });
                break;
        }
    }

    /// <summary>
    /// Applies a Subscribed answer before any Message of the chats it covers is read (the server sends it first),
    /// so those messages already find their cursor.
    /// </summary>
    private async ValueTask OnSubscribedAsync(Connection conn, SubscribedFrame subscribed)
    {
        if (!conn.Pending.TryGetValue(subscribed.RequestId, out var pending) || pending is not SubscribeCall call)
        {
            CompleteCall(conn, subscribed);
            return;
        }

        List<RevokedFrame>? refused = null;
        lock (_chatsLock)
        {
            foreach (var result in subscribed.Results)
            {
                var requested = Array.FindIndex(call.Cursors, c => string.Equals(c.ChatId, result.ChatId, StringComparison.Ordinal));
                if (requested < 0)
                {
                    continue;
                }

                if (result.Code == ErrorCode.None)
                {
                    if (!call.Resume)
                    {
                        // The application asked for a replay from this point: deliver from there.
                        _chats[result.ChatId] = new ChatState(call.Cursors[requested].AfterSeq);
                    }
                    else if (_chats.TryGetValue(result.ChatId, out var chat))
                    {
                        // The client's own re-subscribe keeps the cursor: what was delivered stays delivered.
                        chat.Repairing = false;
                    }
                }
                else if (_chats.Remove(result.ChatId) && call.Resume)
                {
                    // The chat was ours but the server no longer lets us in (e.g. removed while offline):
                    // tell the application the same way as a live removal.
                    (refused ??= []).Add(new RevokedFrame(result.ChatId, result.Code, "Subscription refused on resume."));
                }
            }
        }

        CompleteCall(conn, subscribed);
        if (refused is not null)
        {
            foreach (var revoked in refused)
            {
                await _events.Writer.WriteAsync(revoked, _disposeToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Cursor check for one message: true to deliver it.</summary>
    private bool OnMessage(Connection conn, MessageFrame message)
    {
        var seq = message.Message.Seq;
        ulong repairFrom;
        lock (_chatsLock)
        {
            if (!_chats.TryGetValue(message.ChatId, out var chat))
            {
                // Unsubscribed or revoked while it was in flight.
                return false;
            }

            if (seq <= chat.Cursor)
            {
                Interlocked.Increment(ref _duplicatesDropped);
                return false;
            }

            if (seq == chat.Cursor + 1 || (chat.RepairedAt == chat.Cursor && !chat.Repairing))
            {
                if (seq != chat.Cursor + 1)
                {
                    Interlocked.Increment(ref _gapsDetected);
                    Log($"chat {message.ChatId}: seq {chat.Cursor + 1}..{seq - 1} still missing after a re-subscribe; skipped");
                }

                chat.Cursor = seq;
                chat.Repairing = false;
                chat.RepairedAt = null;
                return true;
            }

            if (!StartRepair(chat))
            {
                return false;
            }

            repairFrom = chat.Cursor;
        }

        Log($"chat {message.ChatId}: gap, expected seq {repairFrom + 1}, got {seq}; re-subscribing");
        _ = RepairAsync(conn, message.ChatId, repairFrom);
        return false;
    }

    /// <summary>A caught-up notice past the cursor means messages were missed: repair like a gap.</summary>
    private bool OnCaughtUp(Connection conn, CaughtUpFrame caughtUp)
    {
        ulong repairFrom;
        lock (_chatsLock)
        {
            if (!_chats.TryGetValue(caughtUp.ChatId, out var chat))
            {
                return false;
            }

            if (caughtUp.Seq <= chat.Cursor)
            {
                return true;
            }

            if (chat.RepairedAt == chat.Cursor && !chat.Repairing)
            {
                // Repaired once and the server still has nothing between: those seqs are gone (expired).
                chat.Cursor = caughtUp.Seq;
                chat.RepairedAt = null;
                return true;
            }

            if (!StartRepair(chat))
            {
                return false;
            }

            repairFrom = chat.Cursor;
        }

        Log($"chat {caughtUp.ChatId}: caught up at {caughtUp.Seq} but cursor is {repairFrom}; re-subscribing");
        _ = RepairAsync(conn, caughtUp.ChatId, repairFrom);
        return false;
    }

    private bool StartRepair(ChatState chat)
    {
        if (chat.Repairing)
        {
            return false; // one repair at a time; the replay covers this message too
        }

        Interlocked.Increment(ref _gapsDetected);
        chat.Repairing = true;
        chat.RepairedAt = chat.Cursor;
        return true;
    }

    /// <summary>
    /// Sends a refused resume re-subscribe again after <paramref name="delay"/>, on the same connection, from the
    /// chats' cursors at that time (chats unsubscribed or revoked meanwhile are left out). When the connection
    /// ends first, the next resume re-subscribes everything anyway.
    /// </summary>
    private async Task ResubscribeLaterAsync(Connection conn, SubscribeCall failed, TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, conn.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        List<ChatCursor> cursors = [];
        lock (_chatsLock)
        {
            foreach (var requested in failed.Cursors)
            {
                if (_chats.TryGetValue(requested.ChatId, out var chat))
                {
                    cursors.Add(new ChatCursor(requested.ChatId, chat.Cursor));
                }
            }
        }

        if (cursors.Count == 0)
        {
            return;
        }

        // Not awaited: OnSubscribedAsync applies the answer, OnError schedules the next try.
        var call = new SubscribeCall([.. cursors], resume: true) { Attempt = failed.Attempt + 1 };
        try
        {
            await conn.SendLock.WaitAsync(conn.Token).ConfigureAwait(false);
            try
            {
                if (!conn.CloseSent)
                {
                    await WriteCallLockedAsync(conn, call).ConfigureAwait(false);
                }
            }
            finally
            {
                conn.SendLock.Release();
            }
        }
        catch (Exception e) when (IsSocketFailure(e))
        {
            Log($"connection {conn.Number}: re-subscribe not written ({e.GetType().Name}); the next resume does it");
        }
    }

    /// <summary>Re-subscribes one chat from its cursor on the same connection; the server replays what is missing.</summary>
    private async Task RepairAsync(Connection conn, string chatId, ulong cursor)
    {
        var call = new SubscribeCall([new ChatCursor(chatId, cursor)], resume: true);
        uint requestId = 0;
        try
        {
            await conn.SendLock.WaitAsync(conn.Token).ConfigureAwait(false);
            try
            {
                requestId = await WriteCallLockedAsync(conn, call).ConfigureAwait(false);
            }
            finally
            {
                conn.SendLock.Release();
            }

            await call.Task.WaitAsync(_options.RequestTimeout, conn.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Lost connection: the reconnect re-subscribes everything. Timeout: let the next gap try again.
            Log($"chat {chatId}: gap repair failed: {e.Message}");
            conn.Pending.TryRemove(requestId, out _);
            lock (_chatsLock)
            {
                if (_chats.TryGetValue(chatId, out var chat))
                {
                    chat.Repairing = false;
                    chat.RepairedAt = null;
                }
            }
        }
    }
}
