using System.Text;
using Gateway.Client.Internal;
using Gateway.Protocol;

namespace Gateway.Client;

public sealed partial class ChatClient
{
    /// <summary>Content type of <see cref="SendTextAsync"/>.</summary>
    public const string TextContentType = "text/plain";

    /// <summary>
    /// Sends a message and completes once the server acknowledged it as durable. Retries by itself, always with
    /// the same client message id so the server stores the message once: after <see cref="ChatClientOptions.RequestTimeout"/>
    /// without an answer, after a reconnect, and after a retryable error (<see cref="ErrorCode.Unavailable"/>,
    /// <see cref="ErrorCode.Internal"/> with back-off; <see cref="ErrorCode.RateLimited"/> after the server's
    /// retryAfterMs). It ends only with an ack,
    /// a non-retryable error, cancellation, or the client ending. The frame carries the W3C trace context of
    /// <see cref="System.Diagnostics.Activity.Current"/> at the call, on every retry (see
    /// <see cref="ChatClientOptions.PropagateTraceContext"/>).
    /// </summary>
    /// <param name="chatId">The chat.</param>
    /// <param name="contentType">The content's media type, e.g. <c>text/plain</c>.</param>
    /// <param name="content">The content. Not copied: keep it unchanged until the returned task completes.</param>
    /// <param name="expiresAt">Expiry as Unix milliseconds (disappearing message), or null.</param>
    /// <param name="clientMessageId">The idempotency key; a new Guid v7 ("N" format) when null. Pass the same id
    /// again (e.g. after an app restart) to retry a send whose outcome is unknown.</param>
    /// <param name="cancellationToken">Stops waiting. The message may still have been stored: retry it with the
    /// same <paramref name="clientMessageId"/> to find out.</param>
    /// <returns>The ack; <see cref="SendAckFrame.Duplicate"/> is true when an earlier attempt was stored.</returns>
    /// <exception cref="ChatClientException">A non-retryable error (its <see cref="ChatClientException.Code"/>), or the client ended.</exception>
    public async Task<SendAckFrame> SendAsync(string chatId, string contentType, ReadOnlyMemory<byte> content,
        long? expiresAt = null, string? clientMessageId = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(chatId);
        ArgumentException.ThrowIfNullOrEmpty(contentType);
        var maxContent = Hello?.MaxContentBytes is { } m and > 0 ? (int)m : ProtocolConstants.DefaultMaxContentBytes;
        if (content.Length > maxContent)
        {
            // Refused here: the server would answer ValidationFailed, or close 1009 for an oversized frame.
            throw new ChatClientException(ErrorCode.ValidationFailed, $"Content is {content.Length} bytes; the server takes at most {maxContent}.");
        }

        clientMessageId ??= Guid.CreateVersion7().ToString("N");
        var trace = _options.PropagateTraceContext ? System.Diagnostics.Activity.Current : null;
        var send = new PendingSend(Interlocked.Increment(ref _sendOrder), chatId, clientMessageId, contentType, content, expiresAt)
        {
            TraceParent = trace is null ? null : TraceContext.Format(trace),
            TraceState = trace is not null && TraceContext.IsValidTraceState(trace.TraceStateString) ? trace.TraceStateString : null,
        };
        Connection? conn;
        lock (_stateLock)
        {
            ObjectDisposedException.ThrowIf(IsDisposed, this);
            if (_fatal is not null)
            {
                throw _fatal;
            }

            _unacked.Add(send.Order, send);
            conn = _current; // null: the next resume writes it
        }

        try
        {
            if (conn is not null)
            {
                await TryWriteSendAsync(conn, send).ConfigureAwait(false);
            }

            while (true)
            {
                try
                {
                    return await send.Result.Task.WaitAsync(_options.RequestTimeout, cancellationToken).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    // No answer in time: write it again with the same id (the server deduplicates). If the
                    // connection is down, the resume after the reconnect writes it instead.
                    lock (_stateLock)
                    {
                        // A retry waiting out its delay (e.g. the server's retryAfterMs) writes it itself.
                        conn = send.RetryScheduled ? null : _current;
                    }

                    if (conn is not null)
                    {
                        Log($"send {clientMessageId}: no ack within {_options.RequestTimeout}; writing it again");
                        await TryWriteSendAsync(conn, send).ConfigureAwait(false);
                    }
                }
            }
        }
        finally
        {
            lock (_stateLock)
            {
                _unacked.Remove(send.Order);
            }

            // A late error for an abandoned send must not surface as an unobserved task exception.
            _ = send.Result.Task.ContinueWith(static t => _ = t.Exception, CancellationToken.None,
                TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    /// <summary>Sends UTF-8 text as <see cref="TextContentType"/>; see <see cref="SendAsync"/>.</summary>
    public Task<SendAckFrame> SendTextAsync(string chatId, string text, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(text);
        return SendAsync(chatId, TextContentType, Encoding.UTF8.GetBytes(text), cancellationToken: cancellationToken);
    }

    /// <summary>
    /// Subscribes to chats. For each chat the server answered with code 0, the client remembers it with cursor
    /// <see cref="ChatCursor.AfterSeq"/>, receives every message after it exactly once, in order, then a
    /// <see cref="CaughtUpFrame"/>, then live messages, and re-subscribes it from its cursor after a reconnect.
    /// Chats with another code (e.g. <see cref="ErrorCode.NotMember"/>) are not remembered; check
    /// <see cref="SubscribedFrame.Results"/>.
    /// </summary>
    /// <exception cref="ChatClientException">The server refused the frame, or the connection was lost meanwhile.</exception>
    /// <exception cref="TimeoutException">No connection or no answer within <see cref="ChatClientOptions.RequestTimeout"/>.</exception>
    public async Task<SubscribedFrame> SubscribeAsync(IEnumerable<ChatCursor> cursors, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(cursors);
        ChatCursor[] list = [.. cursors];
        if (list.Length == 0)
        {
            throw new ArgumentException("Subscribe to at least one chat.", nameof(cursors));
        }

        return (SubscribedFrame)await CallAsync(new SubscribeCall(list, resume: false), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Unsubscribes from chats. The client forgets them at once (messages still in flight are dropped) and does not
    /// re-subscribe them after a reconnect.
    /// </summary>
    public async Task<UnsubscribedFrame> UnsubscribeAsync(IEnumerable<string> chatIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(chatIds);
        string[] list = [.. chatIds];
        if (list.Length == 0)
        {
            throw new ArgumentException("Unsubscribe from at least one chat.", nameof(chatIds));
        }

        lock (_chatsLock)
        {
            foreach (var chatId in list)
            {
                _chats.Remove(chatId);
            }
        }

        return (UnsubscribedFrame)await CallAsync(new UnsubscribeCall(list), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads a page of older messages: up to <paramref name="limit"/> messages with seq below
    /// <paramref name="beforeSeq"/> (0: the newest). Does not touch cursors.</summary>
    public async Task<HistoryPageFrame> GetHistoryAsync(string chatId, ulong beforeSeq, int limit, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(chatId);
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(limit, ProtocolConstants.MaxHistoryPage);
        return (HistoryPageFrame)await CallAsync(new HistoryCall(chatId, beforeSeq, (uint)limit), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Waits for a ready connection, writes the request, waits for its answer: all within the request timeout.</summary>
    private async Task<ServerFrame> CallAsync(PendingCall call, CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposeToken);
        linked.CancelAfter(_options.RequestTimeout);
        Connection? conn = null;
        uint requestId = 0;
        try
        {
            while (true)
            {
                conn = await WaitReadyAsync(linked.Token).ConfigureAwait(false);
                await conn.SendLock.WaitAsync(linked.Token).ConfigureAwait(false);
                try
                {
                    if (!conn.CloseSent)
                    {
                        requestId = await WriteCallLockedAsync(conn, call).ConfigureAwait(false);
                        break;
                    }
                }
                finally
                {
                    conn.SendLock.Release();
                }

                // The connection is closing for a drain and already unpublished: wait for the next one.
                await Task.Yield();
            }

            return await call.Task.WaitAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && !IsDisposed)
        {
            if (conn is { IsTornDown: true })
            {
                throw new ChatClientException(ErrorCode.Unavailable, "The connection was lost before the answer.");
            }

            throw new TimeoutException($"No answer within {_options.RequestTimeout}.");
        }
        catch (OperationCanceledException) when (IsDisposed)
        {
            throw new ObjectDisposedException(nameof(ChatClient));
        }
        catch (Exception e) when (e is not ChatClientException && IsSocketFailure(e))
        {
            throw new ChatClientException(ErrorCode.Unavailable, "The connection was lost before the answer.", e);
        }
        finally
        {
            conn?.Pending.TryRemove(requestId, out _);
        }
    }

    private async Task<Connection> WaitReadyAsync(CancellationToken cancellationToken)
    {
        Task<Connection> ready;
        lock (_stateLock)
        {
            ObjectDisposedException.ThrowIf(IsDisposed, this);
            ready = _ready.Task;
        }

        return await ready.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Registers <paramref name="call"/> under a new request id and writes it. Caller holds the send lock.</summary>
    private static async ValueTask<uint> WriteCallLockedAsync(Connection conn, PendingCall call)
    {
        var requestId = conn.NextRequestId();
        conn.Pending[requestId] = call; // before writing: the answer can arrive before SendAsync returns
        conn.Buffer.ResetWrittenCount();
        call.Write(conn.Buffer, requestId);
        await conn.FlushBufferAsync().ConfigureAwait(false);
        return requestId;
    }

    /// <summary>Writes <paramref name="send"/> under a new request id. Caller holds the send lock.</summary>
    private static async ValueTask WriteSendLockedAsync(Connection conn, PendingSend send)
    {
        var requestId = conn.NextRequestId();
        conn.Pending[requestId] = send;
        conn.Buffer.ResetWrittenCount();
        ClientFrameWriter.WriteSend(conn.Buffer, requestId, send.ChatId, send.ClientMessageId, send.ContentType, send.Content.Span, send.ExpiresAt,
            send.TraceParent, send.TraceState);
        await conn.FlushBufferAsync().ConfigureAwait(false);
    }

    /// <summary>Writes a send if it is still unacknowledged. A socket failure is not an error here: the send stays
    /// unacknowledged and the resume after the reconnect writes it again.</summary>
    private async Task TryWriteSendAsync(Connection conn, PendingSend send)
    {
        try
        {
            await conn.SendLock.WaitAsync(conn.Token).ConfigureAwait(false);
            try
            {
                // After a drain's close frame nothing may be written; the resume on the next connection writes it.
                if (!send.Result.Task.IsCompleted && !conn.CloseSent)
                {
                    await WriteSendLockedAsync(conn, send).ConfigureAwait(false);
                }
            }
            finally
            {
                conn.SendLock.Release();
            }
        }
        catch (Exception e) when (IsSocketFailure(e))
        {
            Log($"connection {conn.Number}: send {send.ClientMessageId} not written ({e.GetType().Name}); it goes again after the reconnect");
        }
    }

    /// <summary>
    /// After a retryable error: waits <paramref name="retryAfter"/> (the server's hint) or else the reconnect
    /// back-off, then writes the send again with the same id.
    /// </summary>
    private void ScheduleSendRetry(PendingSend send, TimeSpan? retryAfter)
    {
        lock (_stateLock)
        {
            send.RetryScheduled = true;
        }

        _ = RetrySendLaterAsync(send, retryAfter ?? BackoffDelay(send.RetryCount++));
    }

    private async Task RetrySendLaterAsync(PendingSend send, TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, _disposeToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        Connection? conn;
        lock (_stateLock)
        {
            // Cleared under the same lock a resume reads it with: either this writes the send on the connection
            // a resume already published, or the resume (which finds the flag clear) writes it.
            send.RetryScheduled = false;
            if (!_unacked.ContainsKey(send.Order))
            {
                return; // acked, failed or abandoned meanwhile
            }

            conn = _current;
        }

        if (conn is not null)
        {
            await TryWriteSendAsync(conn, send).ConfigureAwait(false);
        }
    }
}
