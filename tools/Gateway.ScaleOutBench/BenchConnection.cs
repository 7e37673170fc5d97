using System.Buffers;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Gateway.Protocol;
using MessagePack;

namespace Gateway.ScaleOutBench;

/// <summary>
/// A minimal <c>chatgw.v1</c> client for the bench: one <see cref="ClientWebSocket"/>, a receive loop that decodes
/// Message / SendAck / Error frames in place and raises callbacks, and a send path for Subscribe and Send.
/// </summary>
/// <remarks>
/// Thread safety: sends are serialized by a lock, so several tasks may send on one connection; the callbacks run on
/// the single receive loop and must not block it.
/// </remarks>
internal sealed class BenchConnection : IAsyncDisposable
{
    // A SocketsHttpHandler with NoDelay sockets: Nagle would add up to 40 ms (delayed ACK) to small frames.
    private static readonly HttpMessageInvoker Invoker = new(new SocketsHttpHandler
    {
        UseProxy = false,
        ConnectTimeout = TimeSpan.FromSeconds(10),
        ConnectCallback = async (context, ct) =>
        {
            var s = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await s.ConnectAsync(context.DnsEndPoint, ct).ConfigureAwait(false);
                return new NetworkStream(s, ownsSocket: true);
            }
            catch
            {
                s.Dispose();
                throw;
            }
        },
    });

    private readonly ClientWebSocket _socket = new();
    private readonly byte[] _receiveBuffer = new byte[16 * 1024];
    private readonly ArrayBufferWriter<byte> _assembly = new();
    private readonly ArrayBufferWriter<byte> _sendBuffer = new(512);
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly TaskCompletionSource _hello = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<ulong> _caughtUp = new(TaskCreationOptions.RunContinuationsAsynchronously);
    // Issue time of each Send by request id. The server allows at most 64 unacknowledged sends per connection
    // (Gateway:MaxInFlightSends), and request ids are consecutive, so a ring of 128 never overwrites a pending one.
    private readonly long[] _issuedAt = new long[128];
    private readonly string _idPrefix = Guid.NewGuid().ToString("N")[..12];
    private Task? _receiveLoop;
    private uint _requestId;
    private long _sendCounter;
    private volatile bool _closing;

    /// <summary>A delivered message: seq and content (valid only during the call).</summary>
    public Action<ulong, ReadOnlySpan<byte>>? OnMessage { get; set; }

    /// <summary>A SendAck: the request id of the Send it answers, and the Stopwatch timestamp at which that Send was
    /// handed to the socket.</summary>
    public Action<uint, long>? OnAck { get; set; }

    /// <summary>An Error frame answering a request (request id, code).</summary>
    public Action<uint, ErrorCode>? OnRequestError { get; set; }

    /// <summary>Why the connection ended unexpectedly, once it has.</summary>
    public string? Failure { get; private set; }

    /// <summary>Connects, and completes once the server's Hello arrived.</summary>
    public async Task ConnectAsync(Uri endpoint, string token, CancellationToken ct)
    {
        _socket.Options.AddSubProtocol(ProtocolConstants.SubProtocol);
        _socket.Options.KeepAliveInterval = TimeSpan.Zero;
        _socket.Options.SetRequestHeader("Authorization", "Bearer " + token);
        await _socket.ConnectAsync(endpoint, Invoker, ct).ConfigureAwait(false);
        _receiveLoop = Task.Run(ReceiveLoopAsync, CancellationToken.None);
        await _hello.Task.WaitAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Subscribes to one chat from its beginning and completes with the head seq once the catch-up is done.</summary>
    public async Task<ulong> SubscribeAsync(string chatId, CancellationToken ct)
    {
        await SendFrameAsync(static (w, s) => ClientFrameWriter.WriteSubscribe(w, s.Id, [new ChatCursor(s.Chat, 0)]),
            (Id: NextRequestId(), Chat: chatId), ct).ConfigureAwait(false);
        return await _caughtUp.Task.WaitAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Sends one message with a fresh client message id; returns the request id its SendAck will carry.</summary>
    public async ValueTask<uint> SendAsync(string chatId, ReadOnlyMemory<byte> content, CancellationToken ct)
    {
        var id = NextRequestId();
        var messageId = _idPrefix + "-" + Interlocked.Increment(ref _sendCounter).ToString(System.Globalization.CultureInfo.InvariantCulture);
        await SendFrameAsync(static (w, s) =>
            ClientFrameWriter.WriteSend(w, s.Id, s.Chat, s.MessageId, "application/octet-stream", s.Content.Span, null),
            (Id: id, Chat: chatId, MessageId: messageId, Content: content), ct, id).ConfigureAwait(false);
        return id;
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        _closing = true;
        if (_socket.State == WebSocketState.Open)
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await _sendLock.WaitAsync(timeout.Token).ConfigureAwait(false);
                try
                {
                    await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, timeout.Token).ConfigureAwait(false);
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
                // A close that does not finish in time ends with the abort below.
            }
        }

        _socket.Abort();
        _socket.Dispose();
        if (_receiveLoop is { } receive)
        {
            await receive.ConfigureAwait(false);
        }

        _sendLock.Dispose();
    }

    private uint NextRequestId() => Interlocked.Increment(ref _requestId);

    private async Task SendFrameAsync<TState>(Action<IBufferWriter<byte>, TState> write, TState state, CancellationToken ct, uint sendId = 0)
    {
        await _sendLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            _sendBuffer.ResetWrittenCount();
            write(_sendBuffer, state);
            if (sendId != 0)
            {
                // Before the socket send: the ack can arrive before SendAsync returns.
                Volatile.Write(ref _issuedAt[sendId & 127], System.Diagnostics.Stopwatch.GetTimestamp());
            }

            await _socket.SendAsync(_sendBuffer.WrittenMemory, WebSocketMessageType.Binary, true, ct).ConfigureAwait(false);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private async Task ReceiveLoopAsync()
    {
        try
        {
            while (true)
            {
                var result = await _socket.ReceiveAsync(_receiveBuffer.AsMemory(), CancellationToken.None).ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    if (!_closing)
                    {
                        Failure = "closed by server: " + _socket.CloseStatus + " " + _socket.CloseStatusDescription;
                    }

                    break;
                }

                if (result.EndOfMessage && _assembly.WrittenCount == 0)
                {
                    Handle(new ReadOnlySequence<byte>(_receiveBuffer, 0, result.Count));
                }
                else
                {
                    _assembly.Write(_receiveBuffer.AsSpan(0, result.Count));
                    if (result.EndOfMessage)
                    {
                        Handle(new ReadOnlySequence<byte>(_assembly.WrittenMemory));
                        _assembly.ResetWrittenCount();
                    }
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            if (!_closing)
            {
                Failure = "connection lost: " + e.Message;
            }
        }
        catch (Exception e) when (e is FormatException or MessagePackSerializationException or EndOfStreamException)
        {
            Failure = "bad frame from the server: " + e.Message;
        }

        var error = new WebSocketException(Failure ?? "closed");
        _hello.TrySetException(error);
        _caughtUp.TrySetException(error);
    }

    private void Handle(ReadOnlySequence<byte> frame)
    {
        var r = new MessagePackReader(frame);
        var count = r.ReadArrayHeader();
        var tag = r.ReadUInt32();
        switch (tag)
        {
            case (uint)FrameType.Message when count >= 9:
                // [37, chatId, seq, messageId, senderId, sentAt, contentType, content, expiresAt]
                r.Skip();
                var seq = r.ReadUInt64();
                r.Skip();
                r.Skip();
                r.Skip();
                r.Skip();
                var content = r.ReadBytes() ?? throw new FormatException("nil content");
                OnMessage?.Invoke(seq, content.IsSingleSegment ? content.FirstSpan : content.ToArray());
                break;
            case (uint)FrameType.SendAck:
                var requestId = r.ReadUInt32();
                OnAck?.Invoke(requestId, Volatile.Read(ref _issuedAt[requestId & 127]));
                break;
            case (uint)FrameType.Hello:
                _hello.TrySetResult();
                break;
            default:
                HandleControl(frame);
                break;
        }
    }

    private void HandleControl(ReadOnlySequence<byte> frame)
    {
        switch (ServerFrame.Decode(frame))
        {
            case SubscribedFrame s:
                foreach (var result in s.Results)
                {
                    if (result.Code != ErrorCode.None)
                    {
                        _caughtUp.TrySetException(new InvalidOperationException($"subscribe {result.ChatId}: {result.Code}"));
                    }
                }

                break;
            case CaughtUpFrame c:
                _caughtUp.TrySetResult(c.Seq);
                break;
            case ErrorFrame e:
                OnRequestError?.Invoke(e.RequestId, e.Code);
                break;
            default:
                break;
        }
    }

    /// <summary>An HS256 JWT with <c>sub</c>, <c>tid</c>, <c>iat</c>, <c>nbf</c>, <c>exp</c>, as the server's token command mints.</summary>
    public static string Mint(byte[] key, string tenant, string userId)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = Base64Url("""{"alg":"HS256","typ":"JWT"}"""u8);
        var claims = Base64Url(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["sub"] = userId,
            ["tid"] = tenant,
            ["iat"] = now,
            ["nbf"] = now - 5,
            ["exp"] = now + 3600,
        }));
        var signature = System.Security.Cryptography.HMACSHA256.HashData(key, Encoding.ASCII.GetBytes(header + "." + claims));
        return header + "." + claims + "." + Base64Url(signature);
    }

    private static string Base64Url(ReadOnlySpan<byte> bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
