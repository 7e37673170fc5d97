using System.Buffers;
using System.Net.WebSockets;
using Gateway.Protocol;

namespace Gateway.Server.Tests;

/// <summary>A thin test client over <see cref="ClientWebSocket"/> that sends and receives raw protocol frames.
/// Deliberately not the client library: these tests see exactly what the server puts on the wire.</summary>
public sealed class WsClient : IAsyncDisposable
{
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);
    private readonly ClientWebSocket _socket = new();
    private readonly byte[] _buffer = new byte[1 << 20];
    private uint _nextRequestId;

    public ClientWebSocket Socket => _socket;

    public HelloFrame Hello { get; private set; } = null!;

    public static async Task<WsClient> ConnectAsync(Uri uri, string? token, bool expectHello = true)
    {
        var client = new WsClient();
        client._socket.Options.AddSubProtocol(ProtocolConstants.SubProtocol);
        if (token is not null)
        {
            client._socket.Options.SetRequestHeader("Authorization", "Bearer " + token);
        }

        using var cts = new CancellationTokenSource(DefaultTimeout);
        await client._socket.ConnectAsync(uri, cts.Token);
        if (expectHello)
        {
            client.Hello = await client.ReceiveAsync<HelloFrame>();
        }

        return client;
    }

    public uint NextRequestId() => ++_nextRequestId;

    public async Task SendFrameAsync(Action<IBufferWriter<byte>> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        write(buffer);
        using var cts = new CancellationTokenSource(DefaultTimeout);
        await _socket.SendAsync(buffer.WrittenMemory, WebSocketMessageType.Binary, true, cts.Token);
    }

    public async Task<uint> SubscribeAsync(params ChatCursor[] cursors)
    {
        var id = NextRequestId();
        await SendFrameAsync(w => ClientFrameWriter.WriteSubscribe(w, id, cursors));
        return id;
    }

    public async Task<uint> SendTextAsync(string chatId, string text, string? clientMessageId = null)
    {
        var id = NextRequestId();
        await SendFrameAsync(w => ClientFrameWriter.WriteSend(w, id, chatId, clientMessageId ?? Guid.NewGuid().ToString("N"), "text/plain",
            System.Text.Encoding.UTF8.GetBytes(text), null));
        return id;
    }

    /// <summary>Receives the next frame; null when the server closed the connection.</summary>
    public async Task<ServerFrame?> ReceiveAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        var count = 0;
        while (true)
        {
            var result = await _socket.ReceiveAsync(_buffer.AsMemory(count), cts.Token);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return null;
            }

            Assert.Equal(WebSocketMessageType.Binary, result.MessageType);
            count += result.Count;
            if (result.EndOfMessage)
            {
                return ServerFrame.Decode(new ReadOnlySequence<byte>(_buffer, 0, count))
                    ?? throw new InvalidOperationException("unknown frame type");
            }
        }
    }

    public async Task<T> ReceiveAsync<T>(TimeSpan? timeout = null)
        where T : ServerFrame
    {
        var frame = await ReceiveAsync(timeout);
        return frame as T ?? throw new Xunit.Sdk.XunitException($"expected {typeof(T).Name}, got {frame?.ToString() ?? "close"}");
    }

    /// <summary>Receives until the server closes; returns the close status.</summary>
    public async Task<WebSocketCloseStatus?> ReceiveCloseAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        while (true)
        {
            var result = await _socket.ReceiveAsync(new ArraySegment<byte>(_buffer), cts.Token);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                // Complete the close handshake, as a well-behaved client does, so the server need not wait for it.
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cts.Token);
                return result.CloseStatus;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_socket.State == WebSocketState.Open)
        {
            try
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await _socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", cts.Token);
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException)
            {
                // the server may already be gone
            }
        }

        _socket.Dispose();
    }
}
