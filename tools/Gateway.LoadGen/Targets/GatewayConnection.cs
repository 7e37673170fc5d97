using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Gateway.Protocol;
using MessagePack;

namespace Gateway.LoadGen.Targets;

/// <summary>
/// A <c>chatgw.v1</c> connection over <see cref="ClientWebSocket"/>. The socket is dialled through a
/// <see cref="SocketsHttpHandler.ConnectCallback"/> so it can be bound to a source address (127.0.0.2, …): one
/// address has only ~28k ephemeral ports towards one server port. Message frames are decoded in place, without
/// the allocating <see cref="ServerFrame"/> records, because a broadcast run decodes hundreds of thousands per second.
/// </summary>
/// <remarks>
/// Thread safety: <see cref="PublishAsync"/> and the subscribe methods may be called from any thread (sends are
/// serialized by a lock); <see cref="OnMessage"/> and <see cref="OnError"/> run on the single receive loop.
/// </remarks>
public sealed class GatewayConnection : IResumableLoadConnection
{
    // One handler per source address: the handler's connect callback is where the bind happens.
    private static readonly ConcurrentDictionary<string, HttpMessageInvoker> Invokers = new();

    // 4 KiB holds any Message frame of the default 100-byte scenarios many times over; larger WebSocket messages
    // are assembled in _assembly. 19,900 connections × 4 KiB = 78 MiB per worker process, the price of one
    // outstanding ReceiveAsync per socket.
    private readonly byte[] _receiveBuffer = new byte[4096];
    private readonly ArrayBufferWriter<byte> _assembly = new();
    private readonly ArrayBufferWriter<byte> _sendBuffer = new(256);
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly ConcurrentDictionary<string, TaskCompletionSource<ulong>> _pendingCatchUp = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _hello = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly string _idPrefix = Guid.NewGuid().ToString("N")[..12];
    private (byte[] Utf8, string Name)[] _rooms = [];
    private ClientWebSocket? _socket;
    private Task? _receiveLoop;
    private uint _requestId;
    private long _sendCount;
    private volatile bool _closing;

    /// <inheritdoc/>
    public Action<string, ulong, ReadOnlySpan<byte>>? OnMessage { get; set; }

    /// <inheritdoc/>
    public Action<string>? OnError { get; set; }

    /// <summary>Sends acknowledged as durable.</summary>
    public long Acked => Interlocked.Read(ref _acked);

    private long _acked;

    /// <inheritdoc/>
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
            await socket.ConnectAsync(endpoint, InvokerFor(localEndPoint), ct).ConfigureAwait(false);
        }
        catch (WebSocketException e) when (socket.HttpStatusCode is not 0 and not HttpStatusCode.SwitchingProtocols)
        {
            throw new WebSocketException($"http{(int)socket.HttpStatusCode}", e);
        }

        _receiveLoop = Task.Run(ReceiveLoopAsync, CancellationToken.None);
        await _hello.Task.WaitAsync(ct).ConfigureAwait(false);
    }

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
    public ValueTask PublishAsync(string room, ReadOnlyMemory<byte> payload, CancellationToken ct)
    {
        // The idempotency key only has to be unique per sender: a per-connection random prefix and a counter.
        var id = _idPrefix + "-" + Interlocked.Increment(ref _sendCount).ToString(CultureInfo.InvariantCulture);
        return new ValueTask(SendFrameAsync(static (w, s) =>
            ClientFrameWriter.WriteSend(w, s.Id, s.Room, s.MessageId, "application/octet-stream", s.Payload.Span, null),
            (Id: NextRequestId(), Room: room, MessageId: id, Payload: payload), ct));
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

    private static HttpMessageInvoker InvokerFor(IPEndPoint? local) =>
        Invokers.GetOrAdd(local?.Address.ToString() ?? "", static (_, l) => new HttpMessageInvoker(new SocketsHttpHandler
        {
            UseProxy = false,
            ConnectTimeout = TimeSpan.FromSeconds(30),
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

    private async Task SendFrameAsync<TState>(Action<IBufferWriter<byte>, TState> write, TState state, CancellationToken ct)
    {
        var socket = _socket ?? throw new InvalidOperationException("Not connected.");
        await _sendLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            _sendBuffer.ResetWrittenCount();
            write(_sendBuffer, state);
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
            }
        }
        catch (Exception e) when (e is FormatException or MessagePackSerializationException or EndOfStreamException)
        {
            failure = "bad-frame";
        }

        if (failure is not null)
        {
            OnError?.Invoke(failure);
        }

        var error = new WebSocketException(failure ?? "closed");
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
