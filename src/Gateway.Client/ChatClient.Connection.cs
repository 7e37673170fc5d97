using System.Net;
using System.Net.WebSockets;
using Gateway.Client.Internal;
using Gateway.Protocol;

namespace Gateway.Client;

public sealed partial class ChatClient
{
    // Most chats per resume Subscribe frame: the server's default per-frame limit.
    private const int ResumeChunk = ProtocolConstants.DefaultMaxChatsPerSubscribe;

    /// <summary>Opens a socket, checks the subprotocol, starts the receive loop and waits for Hello.</summary>
    private async Task<Connection> ConnectOnceAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.ConnectTimeout);
        var token = _options.TokenProvider is { } provider
            ? await provider(timeout.Token).ConfigureAwait(false)
            : _options.Token!;

        var socket = new ClientWebSocket();
        var number = Interlocked.Increment(ref _connectionCount);
        var conn = new Connection(socket, number);
        try
        {
            socket.Options.AddSubProtocol(_options.SubProtocol);
            socket.Options.CollectHttpResponseDetails = true;
            socket.Options.KeepAliveInterval = _options.KeepAliveInterval;
            socket.Options.KeepAliveTimeout = _options.KeepAliveTimeout;
            var uri = _options.Endpoint;
            if (_options.TokenInQuery)
            {
                var builder = new UriBuilder(uri);
                var query = builder.Query.TrimStart('?');
                builder.Query = (query.Length > 0 ? query + "&" : "") + "access_token=" + Uri.EscapeDataString(token);
                uri = builder.Uri;
            }
            else
            {
                socket.Options.SetRequestHeader("Authorization", "Bearer " + token);
            }

            _options.ConfigureWebSocket?.Invoke(socket.Options);
            try
            {
                await socket.ConnectAsync(uri, timeout.Token).ConfigureAwait(false);
            }
            catch (WebSocketException e) when (socket.HttpStatusCode is not 0 and not HttpStatusCode.SwitchingProtocols)
            {
                throw new ChatClientException(ErrorCode.Unavailable,
                    $"The server refused the WebSocket upgrade with HTTP {(int)socket.HttpStatusCode}.", e)
                {
                    HttpStatus = (int)socket.HttpStatusCode,
                };
            }

            if (!string.Equals(socket.SubProtocol, _options.SubProtocol, StringComparison.Ordinal))
            {
                throw new ChatClientException(ErrorCode.InvalidFrame,
                    $"The server selected subprotocol '{socket.SubProtocol}', not '{_options.SubProtocol}'.");
            }

            conn.ReceiveTask = ReceiveLoopAsync(conn);
            var hello = await conn.Hello.WaitAsync(timeout.Token).ConfigureAwait(false);
            Interlocked.Exchange(ref _tokenExpiresAt, hello.TokenExpiresAt);
            Volatile.Write(ref _hello, hello);
            Log($"connection {number}: hello, session {hello.SessionId}, user {hello.UserId}");
            return conn;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            await DropAsync(conn).ConfigureAwait(false);
            throw new TimeoutException($"Connecting to {_options.Endpoint} took longer than {_options.ConnectTimeout}.");
        }
        catch
        {
            await DropAsync(conn).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Aborts a connection that never became current and waits for its receive loop.</summary>
    private static async Task DropAsync(Connection conn)
    {
        conn.Abort();
        await conn.ReceiveTask.ConfigureAwait(false); // never throws: the loop returns how it ended
        conn.Dispose();
    }

    /// <summary>
    /// Makes <paramref name="conn"/> current: re-subscribes remembered chats from their cursors, then writes every
    /// unacknowledged send again, in call order. All of it happens under the send lock and the connection is
    /// published as ready inside it, so a send issued meanwhile is written after the resent ones.
    /// Socket failures are not thrown: the receive loop sees them and the run loop reconnects.
    /// </summary>
    private async Task ResumeAsync(Connection conn)
    {
        ChatCursor[] cursors;
        lock (_chatsLock)
        {
            cursors = new ChatCursor[_chats.Count];
            var i = 0;
            foreach (var (chatId, chat) in _chats)
            {
                chat.Repairing = false;
                cursors[i++] = new ChatCursor(chatId, chat.Cursor);
            }
        }

        var published = false;
        await conn.SendLock.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            if (conn.CloseSent)
            {
                return; // drained before it was resumed: the receive loop ends at the server's close reply
            }

            for (var start = 0; start < cursors.Length; start += ResumeChunk)
            {
                var chunk = cursors.AsSpan(start, Math.Min(ResumeChunk, cursors.Length - start)).ToArray();
                await WriteCallLockedAsync(conn, new SubscribeCall(chunk, resume: true)).ConfigureAwait(false);
            }

            PendingSend[] resend;
            lock (_stateLock)
            {
                if (_fatal is not null || IsDisposed)
                {
                    return;
                }

                // A send waiting out a retry delay is written by its timer, on this connection once published.
                resend = [.. _unacked.Values.Where(static s => !s.RetryScheduled)];
                _current = conn;
                _ready.TrySetResult(conn);
                published = true;
            }

            Array.Sort(resend, static (a, b) => a.Order.CompareTo(b.Order));
            foreach (var send in resend)
            {
                await WriteSendLockedAsync(conn, send).ConfigureAwait(false);
            }

            if (cursors.Length > 0 || resend.Length > 0)
            {
                Log($"connection {conn.Number}: resumed {cursors.Length} chat(s), resent {resend.Length} send(s)");
            }
        }
        catch (Exception e) when (IsSocketFailure(e))
        {
            Log($"connection {conn.Number}: resume interrupted: {e.Message}");
            conn.Abort(); // make sure the receive loop ends, so the run loop reconnects
        }
        finally
        {
            conn.SendLock.Release();
        }

        if (published)
        {
            SetState(ChatConnectionState.Connected, null, null);
        }
    }

    /// <summary>Watches the current connection; on an unasked-for drop reconnects, or ends the client.</summary>
    private async Task RunAsync(Connection conn)
    {
        while (true)
        {
            ConnectionEnd end;
            try
            {
                end = await conn.ReceiveTask.WaitAsync(_disposeToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Disposed, possibly while this connection was being resumed and never published: stop it here.
                conn.Abort();
                end = await conn.ReceiveTask.ConfigureAwait(false);
            }

            TearDown(conn, end);
            if (IsDisposed)
            {
                return;
            }

            Log($"connection {conn.Number}: {end}");
            var fatal = FatalFor(end);
            if (fatal is null && !_options.AutoReconnect)
            {
                fatal = new ChatClientException(ErrorCode.Unavailable, $"The connection ended ({end}) and AutoReconnect is off.", end.Error)
                {
                    CloseStatus = end.Code,
                };
            }

            if (fatal is not null)
            {
                Shutdown(fatal, fatal);
                SetState(ChatConnectionState.Closed, end.Code, fatal);
                return;
            }

            SetState(ChatConnectionState.Reconnecting, end.Code, end.Error);

            // After the client's own drain close the server's jittered delay is already served: go at once.
            var next = await ReconnectAsync(end, immediate: conn.CloseSent).ConfigureAwait(false);
            if (next is null)
            {
                return;
            }

            Interlocked.Increment(ref _reconnects);
            await ResumeAsync(next).ConfigureAwait(false);
            conn = next;
        }
    }

    /// <summary>Backs off and retries until connected; null when disposed or the failure is final.</summary>
    private async Task<Connection?> ReconnectAsync(ConnectionEnd end, bool immediate)
    {
        // A token expiry is not an overload signal: the first retry may go at once with the fresh token.
        var attempt = immediate || end.Code == CloseCodes.TokenExpired ? -1 : 0;
        for (; ; attempt++)
        {
            try
            {
                await Task.Delay(attempt < 0 ? TimeSpan.Zero : BackoffDelay(attempt), _disposeToken).ConfigureAwait(false);
                return await ConnectOnceAsync(_disposeToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (IsDisposed)
            {
                return null;
            }
            catch (Exception e) when (!IsDisposed)
            {
                Log($"reconnect attempt {attempt + 1} failed: {e.Message}");
                if (e is ChatClientException { HttpStatus: 401 or 403 } && _options.TokenProvider is null)
                {
                    // A fixed token that is refused now will be refused forever.
                    Shutdown(e, e);
                    SetState(ChatConnectionState.Closed, null, e);
                    return null;
                }

                if (e is ChatClientException { Code: ErrorCode.InvalidFrame })
                {
                    // Wrong subprotocol: a version mismatch that retrying does not fix.
                    Shutdown(e, e);
                    SetState(ChatConnectionState.Closed, null, e);
                    return null;
                }
            }
            catch
            {
                return null;
            }
        }
    }

    /// <summary>
    /// Delay before reconnect attempt <paramref name="attempt"/> (0-based): min x 2^attempt capped at max, with
    /// "equal jitter" (half fixed, half random) so thousands of clients dropped by one pod drain do not come
    /// back in lockstep. 100 ms doubling reaches the 5 s cap at the 7th attempt (100 x 2^6 = 6.4 s).
    /// </summary>
    private TimeSpan BackoffDelay(int attempt)
    {
        var min = _options.ReconnectDelayMin.TotalMilliseconds;
        var max = Math.Max(min, _options.ReconnectDelayMax.TotalMilliseconds);
        var cap = Math.Min(max, min * Math.Pow(2, Math.Min(attempt, 30)));
        return TimeSpan.FromMilliseconds((cap / 2) + (Random.Shared.NextDouble() * cap / 2));
    }

    /// <summary>Null when the end is worth a reconnect; otherwise the error that ends the client.</summary>
    private ChatClientException? FatalFor(ConnectionEnd end)
    {
        switch (end.Code)
        {
            case CloseCodes.ProtocolError or CloseCodes.UnsupportedData or CloseCodes.InvalidPayload
                or CloseCodes.PolicyViolation or CloseCodes.MessageTooBig:
                // The server says this client misbehaves; reconnecting would repeat it.
                return new ChatClientException(ErrorCode.InvalidFrame, $"The server closed the connection: {end.Code} {end.Reason}")
                {
                    CloseStatus = end.Code,
                };
            case CloseCodes.TokenExpired when _options.TokenProvider is null:
                return new ChatClientException(ErrorCode.Unavailable, "The token expired and no TokenProvider can renew it.")
                {
                    CloseStatus = end.Code,
                };
            default:
                return null;
        }
    }

    /// <summary>Unpublishes a finished connection and fails its non-send requests. Sends stay unacknowledged.</summary>
    private void TearDown(Connection conn, ConnectionEnd end)
    {
        Unpublish(conn);
        conn.Abort();
        var lost = new ChatClientException(ErrorCode.Unavailable, $"The request did not complete: {end}.", end.Error)
        {
            CloseStatus = end.Code,
        };
        foreach (var (id, pending) in conn.Pending)
        {
            if (conn.Pending.TryRemove(id, out _) && pending is PendingCall call)
            {
                call.Fail(lost);
            }
        }

        lock (_chatsLock)
        {
            foreach (var chat in _chats.Values)
            {
                chat.Repairing = false;
            }
        }

        conn.Dispose();
    }

    /// <summary>Stops handing out <paramref name="conn"/>: new requests wait for the next connection.</summary>
    private void Unpublish(Connection conn)
    {
        lock (_stateLock)
        {
            if (_current == conn)
            {
                _current = null;
                if (_ready.Task.IsCompleted && _fatal is null)
                {
                    _ready = NewReady();
                }
            }
        }
    }

    private async Task CloseGracefullyAsync(Connection conn)
    {
        // Best effort: a peer that does not answer the close within 1 s is aborted.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        try
        {
            await conn.SendLock.WaitAsync(timeout.Token).ConfigureAwait(false);
            try
            {
                await conn.Socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", timeout.Token).ConfigureAwait(false);
            }
            finally
            {
                conn.SendLock.Release();
            }
        }
        catch (Exception e) when (IsSocketFailure(e))
        {
            Log($"connection {conn.Number}: close failed: {e.Message}");
        }

        conn.Abort();
    }

    private static bool IsSocketFailure(Exception e) =>
        e is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException or InvalidOperationException;
}
