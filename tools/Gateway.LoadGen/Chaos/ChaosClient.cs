using System.Buffers;
using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using Gateway.Protocol;

namespace Gateway.LoadGen.Chaos;

/// <summary>
/// One chaos user on the raw <c>chatgw.v1</c> protocol, so that what the server sends is recorded exactly (the
/// .NET client library drops duplicates and repairs gaps, which would hide the server's faults). It follows the
/// client contract of PROTOCOL.md §8: one connection at a time, to a gateway picked at random on every (re)connect;
/// after Hello one Subscribe with every chat's cursor (highest seq received), then every unacknowledged send again
/// with its original client message id. A send without an answer is written again after the request timeout;
/// Unavailable, Internal and RateLimited are retried after a short delay (or retryAfterMs); other errors end the send.
/// </summary>
internal sealed class ChaosClient
{
    private readonly string _user;
    private readonly string[] _chats;
    private readonly Func<Uri> _pickEndpoint;
    private readonly string _token;
    private readonly ChaosRecorder _recorder;
    private readonly TimeSpan _requestTimeout;
    private readonly Dictionary<string, ulong> _cursors = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    // Unacknowledged sends in issue order, with when each was last written (run seconds; null: not on this connection).
    private readonly LinkedList<Outgoing> _outbox = [];
    private readonly Dictionary<string, LinkedListNode<Outgoing>> _outboxIndex = new(StringComparer.Ordinal);
    private Conn? _current;
    private int _connections;

    public ChaosClient(string user, string[] chats, Func<Uri> pickEndpoint, string token, ChaosRecorder recorder, TimeSpan requestTimeout)
    {
        _user = user;
        _chats = chats;
        _pickEndpoint = pickEndpoint;
        _token = token;
        _recorder = recorder;
        _requestTimeout = requestTimeout;
        foreach (var c in chats)
        {
            _cursors[c] = 0;
        }
    }

    public string User => _user;

    /// <summary>Connections made so far.</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Sends not yet acknowledged.</summary>
    public int Pending
    {
        get
        {
            lock (_lock)
            {
                return _outbox.Count;
            }
        }
    }

    /// <summary>The highest seq received per chat.</summary>
    public ulong Cursor(string chat)
    {
        lock (_lock)
        {
            return _cursors[chat];
        }
    }

    /// <summary>Queues a send; writes it at once when connected.</summary>
    public void Enqueue(ChaosSend send)
    {
        Conn? conn;
        Outgoing o;
        lock (_lock)
        {
            o = new Outgoing(send);
            _outboxIndex[send.ClientMessageId] = _outbox.AddLast(o);
            conn = _current;
        }

        if (conn is not null)
        {
            _ = WriteSendAsync(conn, o);
        }
    }

    /// <summary>Drops the current connection (as a network failure would): the client reconnects and resumes.</summary>
    public void Abort()
    {
        Conn? conn;
        lock (_lock)
        {
            conn = _current;
        }

        conn?.Socket.Abort();
    }

    /// <summary>Connects, resumes, and reconnects on every loss until <paramref name="ct"/> ends.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        var attempt = 0;
        using var retryTimer = new PeriodicTimer(TimeSpan.FromMilliseconds(250));
        var retries = RetryLoopAsync(retryTimer, ct);
        while (!ct.IsCancellationRequested)
        {
            var uri = _pickEndpoint();
            using var socket = new ClientWebSocket();
            socket.Options.AddSubProtocol(ProtocolConstants.SubProtocol);
            socket.Options.SetRequestHeader("Authorization", "Bearer " + _token);
            socket.Options.KeepAliveInterval = TimeSpan.FromSeconds(5);
            socket.Options.KeepAliveTimeout = TimeSpan.FromSeconds(15);
            var conn = new Conn(socket, Interlocked.Increment(ref _connections));
            try
            {
                using (var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
                {
                    connectTimeout.CancelAfter(TimeSpan.FromSeconds(5));
                    await socket.ConnectAsync(uri, connectTimeout.Token).ConfigureAwait(false);
                    var receive = ReceiveLoopAsync(conn);
                    await conn.Hello.Task.WaitAsync(connectTimeout.Token).ConfigureAwait(false);
                    await ResumeAsync(conn).ConfigureAwait(false);
                    attempt = 0;
                    await receive.WaitAsync(ct).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException or TimeoutException or InvalidOperationException or ObjectDisposedException)
            {
                if (!ct.IsCancellationRequested)
                {
                    _recorder.Event($"{_user} connection {conn.Number} to {uri.Authority}: {e.GetType().Name} {e.Message}");
                }
            }
            finally
            {
                lock (_lock)
                {
                    if (_current == conn)
                    {
                        _current = null;
                    }
                }

                socket.Abort();
            }

            if (ct.IsCancellationRequested)
            {
                break;
            }

            // Back off with jitter: 100 ms doubling to 2 s.
            var cap = Math.Min(2000, 100 * (1 << Math.Min(attempt++, 5)));
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds((cap / 2.0) + (Random.Shared.NextDouble() * cap / 2)), ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        try
        {
            await retries.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Subscribes every chat from its cursor, publishes the connection, then writes the outbox in order.</summary>
    private async Task ResumeAsync(Conn conn)
    {
        ChatCursor[] cursors;
        lock (_lock)
        {
            cursors = [.. _chats.Select(c => new ChatCursor(c, _cursors[c]))];
        }

        await WriteAsync(conn, (w, id) => ClientFrameWriter.WriteSubscribe(w, id, cursors), id => conn.Subscribes[id] = _chats).ConfigureAwait(false);
        Outgoing[] resend;
        lock (_lock)
        {
            _current = conn;
            resend = [.. _outbox];
        }

        foreach (var o in resend)
        {
            await WriteSendAsync(conn, o).ConfigureAwait(false);
        }
    }

    /// <summary>Every 250 ms: writes again what has waited longer than the request timeout, or whose retry delay is over.</summary>
    private async Task RetryLoopAsync(PeriodicTimer timer, CancellationToken ct)
    {
        while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
        {
            var now = _recorder.Now;
            List<Outgoing> due = [];
            Conn? conn;
            lock (_lock)
            {
                conn = _current;
                if (conn is null)
                {
                    continue;
                }

                foreach (var o in _outbox)
                {
                    if ((o.RetryAt is { } r && r <= now) || (o.RetryAt is null && o.WrittenOn == conn.Number && now - o.WrittenAt > _requestTimeout.TotalSeconds))
                    {
                        due.Add(o);
                    }
                }
            }

            foreach (var o in due)
            {
                await WriteSendAsync(conn, o).ConfigureAwait(false);
            }
        }
    }

    private async Task WriteSendAsync(Conn conn, Outgoing o)
    {
        lock (_lock)
        {
            if (!_outboxIndex.ContainsKey(o.Send.ClientMessageId))
            {
                return; // acknowledged meanwhile
            }

            o.RetryAt = null;
            o.WrittenOn = conn.Number;
            o.WrittenAt = _recorder.Now;
            o.Send.Attempts++;
        }

        var content = Encoding.UTF8.GetBytes(o.Send.ClientMessageId);
        await WriteAsync(conn, (w, id) => ClientFrameWriter.WriteSend(w, id, o.Send.Chat, o.Send.ClientMessageId, "text/plain", content, null),
            id => conn.Requests[id] = o).ConfigureAwait(false);
    }

    private static async Task WriteAsync(Conn conn, Action<IBufferWriter<byte>, uint> write, Action<uint> register)
    {
        try
        {
            await conn.SendLock.WaitAsync().ConfigureAwait(false);
            try
            {
                var id = ++conn.RequestId;
                register(id);
                conn.Buffer.ResetWrittenCount();
                write(conn.Buffer, id);
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await conn.Socket.SendAsync(conn.Buffer.WrittenMemory, WebSocketMessageType.Binary, true, timeout.Token).ConfigureAwait(false);
            }
            finally
            {
                conn.SendLock.Release();
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException or InvalidOperationException)
        {
            // The receive loop sees the broken socket and the run loop reconnects; the send stays in the outbox.
            conn.Socket.Abort();
        }
    }

    private async Task ReceiveLoopAsync(Conn conn)
    {
        var buffer = new byte[64 * 1024];
        var assembly = new ArrayBufferWriter<byte>();
        try
        {
            while (true)
            {
                var result = await conn.Socket.ReceiveAsync(buffer, CancellationToken.None).ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    _recorder.Event($"{_user} connection {conn.Number}: closed {result.CloseStatus} {result.CloseStatusDescription}");
                    return;
                }

                assembly.Write(buffer.AsSpan(0, result.Count));
                if (!result.EndOfMessage)
                {
                    continue;
                }

                var frame = ServerFrame.Decode(new ReadOnlySequence<byte>(assembly.WrittenMemory));
                assembly.ResetWrittenCount();
                if (frame is not null)
                {
                    Handle(conn, frame);
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException or FormatException)
        {
            if (e is FormatException)
            {
                _recorder.Event($"{_user} connection {conn.Number}: undecodable frame: {e.Message}");
            }
        }
        finally
        {
            conn.Hello.TrySetException(new IOException("connection ended before Hello"));
            _ = conn.Hello.Task.Exception;
        }
    }

    private void Handle(Conn conn, ServerFrame frame)
    {
        switch (frame)
        {
            case HelloFrame:
                conn.Hello.TrySetResult();
                break;
            case MessageFrame m:
                {
                    var seq = m.Message.Seq;
                    _recorder.Delivered(new ChaosDelivery(_user, m.ChatId, seq, m.Message.MessageId, m.Message.SenderId,
                        Encoding.UTF8.GetString(m.Message.Content.Span), conn.Number, _recorder.Now));
                    lock (_lock)
                    {
                        if (_cursors.TryGetValue(m.ChatId, out var c) && seq > c)
                        {
                            _cursors[m.ChatId] = seq; // §8: a seq above cursor + 1 is applied too (the cursor jumps)
                        }
                    }

                    break;
                }

            case SendAckFrame ack:
                if (conn.Requests.TryRemove(ack.RequestId, out var acked))
                {
                    _recorder.Acked(acked.Send, new ChaosAck(ack.Seq, ack.MessageId, ack.Duplicate, _recorder.Now));
                    lock (_lock)
                    {
                        if (_outboxIndex.Remove(acked.Send.ClientMessageId, out var node))
                        {
                            _outbox.Remove(node);
                        }
                    }
                }

                break;
            case ErrorFrame error when conn.Requests.TryRemove(error.RequestId, out var failed):
                if (error.Code is ErrorCode.Unavailable or ErrorCode.Internal or ErrorCode.RateLimited)
                {
                    lock (_lock)
                    {
                        failed.RetryAt = _recorder.Now + (error.RetryAfterMs > 0 ? error.RetryAfterMs / 1000.0 : 0.2);
                    }

                    _recorder.Count("send-error:" + error.Code);
                }
                else
                {
                    _recorder.Event($"{_user} send {failed.Send.ClientMessageId}: fatal {error.Code} {error.Message}");
                    lock (_lock)
                    {
                        failed.Send.FatalError ??= $"{error.Code}: {error.Message}";
                        if (_outboxIndex.Remove(failed.Send.ClientMessageId, out var node))
                        {
                            _outbox.Remove(node);
                        }
                    }
                }

                break;
            case ErrorFrame error when conn.Subscribes.TryRemove(error.RequestId, out var chats):
                // The whole Subscribe was refused (e.g. rate limited): subscribe those chats again after a moment.
                _recorder.Count("subscribe-error:" + error.Code);
                _recorder.Event($"{_user} connection {conn.Number}: subscribe error {error.Code} {error.Message}");
                _ = ResubscribeLaterAsync(conn, chats);
                break;
            case ErrorFrame error:
                _recorder.Count("error:" + error.Code);
                _recorder.Event($"{_user} connection {conn.Number}: error {error.Code} {error.Message} for request {error.RequestId}");
                break;
            case SubscribedFrame s:
                {
                    conn.Subscribes.TryRemove(s.RequestId, out _);
                    var refused = s.Results.Where(r => r.Code != ErrorCode.None).Select(r => r.ChatId).ToArray();
                    if (refused.Length > 0)
                    {
                        _recorder.Count("subscribe-refused");
                        _recorder.Event($"{_user} connection {conn.Number}: subscribe refused for {string.Join(",", s.Results.Where(r => r.Code != ErrorCode.None).Select(r => $"{r.ChatId}={r.Code}"))}");
                        _ = ResubscribeLaterAsync(conn, refused);
                    }

                    break;
                }

            case RevokedFrame r:
                _recorder.Count("revoked");
                _recorder.Event($"{_user} connection {conn.Number}: revoked {r.ChatId} {r.Code} {r.Message}");
                _ = ResubscribeLaterAsync(conn, [r.ChatId]);
                break;
            case CaughtUpFrame cu:
                lock (_lock)
                {
                    if (_cursors.TryGetValue(cu.ChatId, out var c) && cu.Seq > c)
                    {
                        _recorder.Count("caughtup-ahead-of-cursor");
                        _recorder.Event($"{_user} connection {conn.Number}: CaughtUp {cu.ChatId} at {cu.Seq} but cursor is {c}");
                    }
                }

                break;
            case DrainFrame:
                _recorder.Count("drain");
                conn.Socket.Abort();
                break;
        }
    }

    private async Task ResubscribeLaterAsync(Conn conn, string[] chats)
    {
        await Task.Delay(500).ConfigureAwait(false);
        ChatCursor[] cursors;
        lock (_lock)
        {
            if (_current != conn)
            {
                return; // the next connection subscribes everything anyway
            }

            cursors = [.. chats.Select(c => new ChatCursor(c, _cursors[c]))];
        }

        await WriteAsync(conn, (w, id) => ClientFrameWriter.WriteSubscribe(w, id, cursors), id => conn.Subscribes[id] = chats).ConfigureAwait(false);
    }

    private sealed class Outgoing(ChaosSend send)
    {
        public ChaosSend Send { get; } = send;

        public int WrittenOn { get; set; }

        public double WrittenAt { get; set; }

        public double? RetryAt { get; set; }
    }

    private sealed class Conn(ClientWebSocket socket, int number)
    {
        public ClientWebSocket Socket { get; } = socket;

        public int Number { get; } = number;

        public TaskCompletionSource Hello { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public SemaphoreSlim SendLock { get; } = new(1, 1);

        public ArrayBufferWriter<byte> Buffer { get; } = new(512);

        public ConcurrentDictionary<uint, Outgoing> Requests { get; } = new();

        public ConcurrentDictionary<uint, string[]> Subscribes { get; } = new();

        public uint RequestId { get; set; }
    }
}
