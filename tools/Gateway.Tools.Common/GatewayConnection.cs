using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Gateway.Protocol;
using MessagePack;

namespace Gateway.Tools.Common;

/// <summary>
/// A lean <c>chatgw.v1</c> connection for the load and benchmark tools, over <see cref="ClientWebSocket"/>: connect
/// with a bearer token, subscribe with cursors, send, and one receive loop that decodes Message and SendAck frames in
/// place (without the allocating <see cref="ServerFrame"/> records: a broadcast run decodes hundreds of thousands per
/// second) and raises callbacks. The socket is dialled through a <see cref="SocketsHttpHandler.ConnectCallback"/> with
/// NoDelay (Nagle would add up to 40 ms, delayed ACK, to small frames) and can be bound to a source address
/// (127.0.0.2, …): one address has only ~28k ephemeral ports towards one server port.
/// </summary>
/// <remarks>
/// Thread safety: the send and subscribe methods may be called from any thread (sends are serialized by a lock); the
/// callbacks (<see cref="OnMessage"/>, <see cref="OnError"/>, <see cref="OnAck"/>, <see cref="OnRequestError"/>) run on
/// the single receive loop and must not block it.
/// </remarks>
public sealed class GatewayConnection : IResumableLoadConnection
{
    /// <summary>The default receive buffer: 4 KiB holds any Message frame of a 100-byte scenario many times over; larger
    /// WebSocket messages are assembled. 19,900 connections × 4 KiB = 78 MiB per load worker process, the price of one
    /// outstanding ReceiveAsync per socket.</summary>
    public const int DefaultReceiveBufferSize = 4096;

    // One handler per source address and connect timeout: the handler's connect callback is where the bind happens.
    private static readonly ConcurrentDictionary<(string Address, TimeSpan Timeout), HttpMessageInvoker> Invokers = new();

    private readonly byte[] _receiveBuffer;
    private readonly TimeSpan _connectTimeout;
    private readonly ArrayBufferWriter<byte> _assembly = new();
    private readonly ArrayBufferWriter<byte> _sendBuffer = new(256);
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly ConcurrentDictionary<string, TaskCompletionSource<ulong>> _pendingCatchUp = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _hello = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly string _idPrefix = Guid.NewGuid().ToString("N")[..12];
    private (byte[] Utf8, string Name)[] _rooms = [];

    // Issue time of each Send by request id, kept only once OnAck is set. The server allows at most 64 unacknowledged
    // sends per connection (Gateway:MaxInFlightSends), and request ids are consecutive, so a ring of 128 never
    // overwrites a pending one.
    private long[]? _issuedAt;
    private ClientWebSocket? _socket;
    private Task? _receiveLoop;
    private uint _requestId;
    private long _sendCount;
    private long _acked;
    private volatile bool _closing;

    /// <summary>A connection with the given receive buffer (larger messages are assembled) and TCP connect timeout
    /// (default 30 s).</summary>
    public GatewayConnection(int receiveBufferSize = DefaultReceiveBufferSize, TimeSpan? connectTimeout = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(receiveBufferSize, 16);
        _receiveBuffer = new byte[receiveBufferSize];
        _connectTimeout = connectTimeout ?? TimeSpan.FromSeconds(30);
    }

    /// <inheritdoc/>
    public Action<string, ulong, ReadOnlySpan<byte>>? OnMessage { get; set; }

    /// <inheritdoc/>
    /// <remarks>Codes: <c>closed:&lt;status&gt;</c>, <c>connection-lost</c>, <c>bad-frame</c>, an Error frame's or a failed
    /// subscription's <see cref="ErrorCode"/>, <c>revoked:&lt;code&gt;</c>, <c>drain</c>.</remarks>
    public Action<string>? OnError { get; set; }

    /// <summary>A SendAck: the request id of the Send it answers, and the Stopwatch timestamp at which that Send was
    /// handed to the socket (0 for a Send issued before this callback was set).</summary>
    public Action<uint, long>? OnAck { get; set; }

    /// <summary>An Error frame answering a request (request id, code); <see cref="OnError"/> is called too.</summary>
    public Action<uint, ErrorCode>? OnRequestError { get; set; }

    /// <summary>Sends acknowledged as durable.</summary>
    public long Acked => Interlocked.Read(ref _acked);

    /// <summary>Why the connection ended unexpectedly, in words, once it has (null while it is up or after a close of
    /// our own).</summary>
    public string? Failure { get; private set; }

    /// <inheritdoc/>
    /// <remarks>Completes once the server's Hello arrived. A refused upgrade throws a <see cref="WebSocketException"/>
    /// whose message is <c>http&lt;status&gt;</c>.</remarks>
    public async Task ConnectAsync(Uri endpoint, string userId, string? token, IPEndPoint? localEndPoint, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        var socket = new ClientWebSocket();
        _socket = socket;
        socket.Options.AddSubProtocol(ProtocolConstants.SubProtocol);
        socket.Options.KeepAliveInterval = TimeSpan.Zero; // the server pings; ClientWebSocket answers while receiving
        if (token is not null)
        {
            socket.Options.SetRequestHeader("Authorization", "Bearer " + token);
        }

        try
        {
            await socket.ConnectAsync(endpoint, InvokerFor(localEndPoint, _connectTimeout), ct).ConfigureAwait(false);
        }
        catch (WebSocketException e) when (socket.HttpStatusCode is not 0 and not HttpStatusCode.SwitchingProtocols)
        {
            throw new WebSocketException($"http{(int)socket.HttpStatusCode}", e);
        }

        _receiveLoop = Task.Run(ReceiveLoopAsync, CancellationToken.None);
        await _hello.Task.WaitAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Connects with <paramref name="token"/> from the system's choice of local address.</summary>
    public Task ConnectAsync(Uri endpoint, string token, CancellationToken ct) => ConnectAsync(endpoint, "", token, null, ct);

    /// <inheritdoc/>
    public Task SubscribeAsync(string room, CancellationToken ct) => SubscribeAsync(room, 0, ct);

    /// <inheritdoc/>
    public async Task<ulong> SubscribeAsync(string room, ulong afterSeq, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(room);
        if (!_rooms.Any(r => r.Name == room))
        {
            _rooms = [.. _rooms, (Encoding.UTF8.GetBytes(room), room)];
        }

        var caughtUp = new TaskCompletionSource<ulong>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pendingCatchUp[room] = caughtUp;
        await SendFrameAsync(static (w, s) => ClientFrameWriter.WriteSubscribe(w, s.Id, [new ChatCursor(s.Room, s.After)]),
            (Id: NextRequestId(), Room: room, After: afterSeq), ct).ConfigureAwait(false);
        return await caughtUp.Task.WaitAsync(ct).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public ValueTask PublishAsync(string room, ReadOnlyMemory<byte> payload, CancellationToken ct) =>
        new(SendMessageAsync(NextRequestId(), room, payload, ct));

    /// <summary>Sends one message with a fresh client message id; returns the request id its SendAck will carry.</summary>
    public async ValueTask<uint> SendAsync(string chatId, ReadOnlyMemory<byte> content, CancellationToken ct)
    {
        var id = NextRequestId();
        await SendMessageAsync(id, chatId, content, ct).ConfigureAwait(false);
        return id;
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        _closing = true;
        if (_socket is { } socket)
        {
            if (socket.State == WebSocketState.Open)
            {
                try
                {
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                    await _sendLock.WaitAsync(timeout.Token).ConfigureAwait(false);
                    try
                    {
                        await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, timeout.Token).ConfigureAwait(false);
                    }
                    finally
                    {
                        _sendLock.Release();
                    }

                    if (_receiveLoop is { } loop)
                    {
                        await loop.WaitAsync(timeout.Token).ConfigureAwait(false);
                    }
                }
                catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException or IOException)
                {
                    // A close that does not finish in time ends with an abort below.
                }
            }

            socket.Abort();
            socket.Dispose();
            if (_receiveLoop is { } receive)
            {
                await receive.ConfigureAwait(false);
            }
        }

        FailPending(new ObjectDisposedException(nameof(GatewayConnection)));
    }

    private static HttpMessageInvoker InvokerFor(IPEndPoint? local, TimeSpan connectTimeout) =>
        Invokers.GetOrAdd((local?.Address.ToString() ?? "", connectTimeout), static (key, l) => new HttpMessageInvoker(new SocketsHttpHandler
        {
            UseProxy = false,
            ConnectTimeout = key.Timeout,
            ConnectCallback = async (context, ct) =>
            {
                var s = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    if (l is not null)
                    {
                        // Port 0: the kernel picks a free ephemeral port on this source address.
                        s.Bind(new IPEndPoint(l.Address, 0));
                    }

                    await s.ConnectAsync(context.DnsEndPoint, ct).ConfigureAwait(false);
                    return new NetworkStream(s, ownsSocket: true);
                }
                catch
                {
                    s.Dispose();
                    throw;
                }
            },
        }), local);

    private uint NextRequestId() => Interlocked.Increment(ref _requestId);

    private Task SendMessageAsync(uint id, string room, ReadOnlyMemory<byte> content, CancellationToken ct)
    {
        // The idempotency key only has to be unique per sender: a per-connection random prefix and a counter.
        var messageId = _idPrefix + "-" + Interlocked.Increment(ref _sendCount).ToString(CultureInfo.InvariantCulture);
        return SendFrameAsync(static (w, s) =>
            ClientFrameWriter.WriteSend(w, s.Id, s.Room, s.MessageId, "application/octet-stream", s.Content.Span, null),
            (Id: id, Room: room, MessageId: messageId, Content: content), ct, id);
    }

    private async Task SendFrameAsync<TState>(Action<IBufferWriter<byte>, TState> write, TState state, CancellationToken ct, uint sendId = 0)
    {
        var socket = _socket ?? throw new InvalidOperationException("Not connected.");
        await _sendLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            _sendBuffer.ResetWrittenCount();
            write(_sendBuffer, state);
            if (sendId != 0 && OnAck is not null)
            {
                // Before the socket send: the ack can arrive before SendAsync returns.
                var issuedAt = _issuedAt ?? Interlocked.CompareExchange(ref _issuedAt, new long[128], null) ?? _issuedAt;
                Volatile.Write(ref issuedAt[sendId & 127], Stopwatch.GetTimestamp());
            }

            await socket.SendAsync(_sendBuffer.WrittenMemory, WebSocketMessageType.Binary, true, ct).ConfigureAwait(false);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private async Task ReceiveLoopAsync()
    {
        var socket = _socket!;
        string? failure = null;
        try
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(_receiveBuffer.AsMemory(), CancellationToken.None).ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    if (!_closing)
                    {
                        failure = "closed:" + (socket.CloseStatus is { } status ? ((int)status).ToString(CultureInfo.InvariantCulture) : "none");
                        Failure = "closed by server: " + socket.CloseStatus + " " + socket.CloseStatusDescription;
                    }

                    break;
                }

                if (result.EndOfMessage && _assembly.WrittenCount == 0)
                {
                    Handle(new ReadOnlyMemory<byte>(_receiveBuffer, 0, result.Count));
                }
                else
                {
                    _assembly.Write(_receiveBuffer.AsSpan(0, result.Count));
                    if (result.EndOfMessage)
                    {
                        Handle(_assembly.WrittenMemory);
                        _assembly.ResetWrittenCount();
                    }
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            if (!_closing)
            {
                failure = "connection-lost";
                Failure = "connection lost: " + e.Message;
            }
        }
        catch (Exception e) when (e is FormatException or MessagePackSerializationException or EndOfStreamException)
        {
            failure = "bad-frame";
            Failure = "bad frame from the server: " + e.Message;
        }

        if (failure is not null)
        {
            OnError?.Invoke(failure);
        }

        var error = new WebSocketException(Failure ?? "closed");
        _hello.TrySetException(error);
        FailPending(error);
    }

    private void FailPending(Exception e)
    {
        foreach (var pending in _pendingCatchUp.Values)
        {
            pending.TrySetException(e);
        }
    }

    private void Handle(ReadOnlyMemory<byte> frame)
    {
        var r = new MessagePackReader(frame);
        var count = r.ReadArrayHeader();
        var tag = r.ReadUInt32();
        switch (tag)
        {
            case (uint)FrameType.Message when count >= 9:
                HandleMessage(ref r);
                break;
            case (uint)FrameType.SendAck:
                Interlocked.Increment(ref _acked);
                if (OnAck is { } onAck)
                {
                    var requestId = r.ReadUInt32();
                    onAck(requestId, Volatile.Read(ref _issuedAt) is { } issuedAt ? Volatile.Read(ref issuedAt[requestId & 127]) : 0);
                }

                break;
            case (uint)FrameType.Hello:
                _hello.TrySetResult();
                break;
            default:
                HandleControl(frame);
                break;
        }
    }

    private void HandleMessage(ref MessagePackReader r)
    {
        // [37, chatId, seq, messageId, senderId, sentAt, contentType, content, expiresAt]
        var chat = r.ReadStringSequence() ?? throw new FormatException("nil chat id");
        var room = RoomFor(chat);
        var seq = r.ReadUInt64();
        r.Skip(); // messageId
        r.Skip(); // senderId
        r.Skip(); // sentAt
        r.Skip(); // contentType
        var content = r.ReadBytes() ?? throw new FormatException("nil content");
        if (content.IsSingleSegment)
        {
            OnMessage?.Invoke(room, seq, content.FirstSpan);
        }
        else
        {
            OnMessage?.Invoke(room, seq, content.ToArray());
        }
    }

    private string RoomFor(ReadOnlySequence<byte> chat)
    {
        // A connection follows one or a few rooms: a linear scan over their UTF-8 names beats hashing a new string.
        var span = chat.IsSingleSegment ? chat.FirstSpan : chat.ToArray();
        foreach (var (utf8, name) in _rooms)
        {
            if (span.SequenceEqual(utf8))
            {
                return name;
            }
        }

        return Encoding.UTF8.GetString(span);
    }

    private void HandleControl(ReadOnlyMemory<byte> frame)
    {
        switch (ServerFrame.Decode(new ReadOnlySequence<byte>(frame)))
        {
            case SubscribedFrame s:
                foreach (var result in s.Results)
                {
                    if (result.Code != ErrorCode.None && _pendingCatchUp.TryRemove(result.ChatId, out var failed))
                    {
                        OnError?.Invoke(result.Code.ToString());
                        failed.TrySetException(new InvalidOperationException($"subscribe {result.ChatId}: {result.Code}"));
                    }
                }

                break;
            case CaughtUpFrame c:
                if (_pendingCatchUp.TryRemove(c.ChatId, out var pending))
                {
                    pending.TrySetResult(c.Seq);
                }

                break;
            case ErrorFrame e:
                OnRequestError?.Invoke(e.RequestId, e.Code);
                OnError?.Invoke(e.Code.ToString());
                break;
            case RevokedFrame v:
                OnError?.Invoke("revoked:" + v.Code);
                break;
            case DrainFrame:
                OnError?.Invoke("drain");
                break;
            default:
                break;
        }
    }
}
