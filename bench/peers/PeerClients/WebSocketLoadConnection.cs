using System.Net;
using System.Net.WebSockets;
using Gateway.Tools.Common;
using PeerClients.Internal;

namespace PeerClients;

/// <summary>
/// The part shared by the clients that speak a peer's protocol straight over <see cref="ClientWebSocket"/>: connect
/// (optionally from a local address), one receive loop that hands buffered bytes to <see cref="Process"/>, and sends
/// serialized by a lock over one reusable buffer (so a publish allocates nothing in steady state).
/// </summary>
public abstract class WebSocketLoadConnection : ILoadConnection
{
    // A 4 KiB first receive buffer holds a whole small message (100-byte payloads plus envelope) while keeping an idle
    // connection cheap; it doubles up to MaxBufferSize for larger messages.
    private const int InitialBufferSize = 4 * 1024;

    // 1 MiB (nats-server's default max_payload) plus 4 KiB of protocol line or envelope.
    private const int MaxBufferSize = (1024 * 1024) + (4 * 1024);

    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private ClientWebSocket? _socket;
    private Task? _receiveLoop;
    private byte[] _sendBuffer = [];
    private int _errorReported;

    /// <inheritdoc />
    public Action<string, ulong, ReadOnlySpan<byte>>? OnMessage { get; set; }

    /// <inheritdoc />
    public Action<string>? OnError { get; set; }

    /// <inheritdoc />
    public abstract Task ConnectAsync(Uri endpoint, string userId, string? token, IPEndPoint? localEndPoint, CancellationToken ct);

    /// <inheritdoc />
    public abstract Task SubscribeAsync(string room, CancellationToken ct);

    /// <inheritdoc />
    public abstract ValueTask PublishAsync(string room, ReadOnlyMemory<byte> payload, CancellationToken ct);

    /// <summary>Opens the socket and starts the receive loop.</summary>
    protected async Task OpenAsync(Uri uri, IPEndPoint? localEndPoint, Action<ClientWebSocketOptions>? configure, CancellationToken ct)
    {
        var socket = new ClientWebSocket();
        configure?.Invoke(socket.Options);
        try
        {
            await WebSocketConnector.ConnectAsync(socket, uri, localEndPoint, ct).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        _socket = socket;
        _receiveLoop = Task.Run(ReceiveLoopAsync, CancellationToken.None);
    }

    /// <summary>
    /// Handles received bytes: <paramref name="buffered"/> holds everything not yet consumed, and
    /// <paramref name="endOfMessage"/> says whether its end is the end of a WebSocket message. Returns how many bytes
    /// from the start were consumed; the rest is kept and handed over again with more bytes after it.
    /// </summary>
    protected abstract int Process(ReadOnlySpan<byte> buffered, bool endOfMessage);

    /// <summary>Called once when the receive loop stops for good, so pending confirmations can fail.</summary>
    protected abstract void OnClosed(Exception error);

    /// <summary>
    /// Sends one binary message built by <paramref name="write"/> into the connection's send buffer (at least
    /// <paramref name="size"/> bytes); <paramref name="write"/> returns the number of bytes written.
    /// </summary>
    protected async ValueTask SendAsync<TState>(int size, TState state, SpanWriter<TState> write, CancellationToken ct)
    {
        var socket = _socket ?? throw new InvalidOperationException("Not connected.");
        await _sendLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_sendBuffer.Length < size)
            {
                _sendBuffer = new byte[Math.Max(size, 256)];
            }
            var length = write(_sendBuffer, state);
            await socket.SendAsync(_sendBuffer.AsMemory(0, length), WebSocketMessageType.Binary, endOfMessage: true, ct)
                .ConfigureAwait(false);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>Writes a message into <paramref name="destination"/> and returns its length.</summary>
    protected delegate int SpanWriter<in TState>(Span<byte> destination, TState state);

    /// <summary>Reports a failure once, unless the connection is being disposed.</summary>
    protected void ReportError(string message)
    {
        if (!_stop.IsCancellationRequested && Interlocked.Exchange(ref _errorReported, 1) == 0)
        {
            OnError?.Invoke(message);
        }
    }

    private async Task ReceiveLoopAsync()
    {
        var socket = _socket!;
        var buffer = new byte[InitialBufferSize];
        var count = 0;
        Exception? error = null;
        try
        {
            while (true)
            {
                if (count == buffer.Length)
                {
                    if (buffer.Length >= MaxBufferSize)
                    {
                        throw new InvalidDataException($"A message larger than {MaxBufferSize} bytes arrived.");
                    }
                    Array.Resize(ref buffer, Math.Min(buffer.Length * 2, MaxBufferSize));
                }
                var result = await socket.ReceiveAsync(buffer.AsMemory(count), _stop.Token).ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    error = new WebSocketException(WebSocketError.ConnectionClosedPrematurely,
                        $"The server closed the connection ({socket.CloseStatus} {socket.CloseStatusDescription}).");
                    break;
                }
                count += result.Count;
                var consumed = Process(buffer.AsSpan(0, count), result.EndOfMessage);
                if (consumed > 0)
                {
                    buffer.AsSpan(consumed, count - consumed).CopyTo(buffer);
                    count -= consumed;
                }
            }
        }
        catch (Exception ex)
        {
            error = ex;
        }
        error ??= new WebSocketException(WebSocketError.ConnectionClosedPrematurely, "The connection closed.");
        OnClosed(error);
        ReportError(error.Message);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_socket is { } socket)
        {
            // Aborting cancels the pending receive at once; a closing handshake would only add a round trip per
            // connection to every teardown of a large run.
            socket.Abort();
            if (_receiveLoop is { } loop)
            {
                await loop.ConfigureAwait(false);
            }
            socket.Dispose();
        }
        _sendLock.Dispose();
        _stop.Dispose();
        GC.SuppressFinalize(this);
    }
}
