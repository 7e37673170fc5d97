using System.Buffers;
using System.Collections.Concurrent;
using System.Net.WebSockets;
using Gateway.Protocol;

namespace Gateway.Client.Internal;

/// <summary>
/// One WebSocket connection and everything whose life ends with it: request ids, pending requests, the send
/// lock and the frame buffer. A reconnect builds a new one; nothing carries over except what
/// <see cref="ChatClient"/> keeps (cursors and unacknowledged sends).
/// </summary>
internal sealed class Connection : IDisposable
{
    private readonly CancellationTokenSource _abort = new();
    private readonly TaskCompletionSource<HelloFrame> _hello = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _nextRequestId;
    private int _disposed;
    private int _refreshing;
    private int _draining;
    private volatile bool _closeSent;

    public Connection(ClientWebSocket socket, int number)
    {
        Socket = socket;
        Number = number;
        Token = _abort.Token;
    }

    /// <summary>The socket. ClientWebSocket allows one outstanding send: take <see cref="SendLock"/> first.</summary>
    public ClientWebSocket Socket { get; }

    /// <summary>1 for the first connection of a client, then one more per reconnect (for logs).</summary>
    public int Number { get; }

    /// <summary>Cancelled when the connection is torn down; cancelling a socket operation aborts the socket.</summary>
    public CancellationToken Token { get; }

    /// <summary>Requests waiting for an answer, by request id: <see cref="PendingSend"/> or <see cref="PendingCall"/>.</summary>
    public ConcurrentDictionary<uint, object> Pending { get; } = new();

    /// <summary>Serializes writes; whoever holds it owns <see cref="Buffer"/>.</summary>
    public SemaphoreSlim SendLock { get; } = new(1, 1);

    /// <summary>Frame build buffer, reused for every frame written under <see cref="SendLock"/>.</summary>
    public ArrayBufferWriter<byte> Buffer { get; private set; } = new(InitialBufferBytes);

    /// <summary>Completes with the server's first frame.</summary>
    public Task<HelloFrame> Hello => _hello.Task;

    /// <summary>The receive loop; its result says how the connection ended.</summary>
    public Task<ConnectionEnd> ReceiveTask { get; set; } = Task.FromResult(new ConnectionEnd(null, null, null));

    public bool IsTornDown => Token.IsCancellationRequested;

    /// <summary>The client sent its close frame (drain): nothing more may be written, but answers are still read
    /// until the server's close. Set and read under <see cref="SendLock"/> by writers.</summary>
    public bool CloseSent
    {
        get => _closeSent;
        set => _closeSent = value;
    }

    /// <summary>A Drain frame arrived on this connection (only the first one counts).</summary>
    public bool IsDraining => Volatile.Read(ref _draining) != 0;

    /// <summary>True for the first Drain of this connection; later ones change nothing.</summary>
    public bool TryStartDrain() => Interlocked.Exchange(ref _draining, 1) == 0;

    /// <summary>True when no token refresh is running on this connection; the caller then owns the refresh
    /// until <see cref="EndRefresh"/>.</summary>
    public bool TryStartRefresh() => Interlocked.Exchange(ref _refreshing, 1) == 0;

    /// <summary>Ends the refresh started by <see cref="TryStartRefresh"/>.</summary>
    public void EndRefresh() => Volatile.Write(ref _refreshing, 0);

    // 4 KiB holds any Subscribe of ~100 chats or a Send with a few KiB of content; larger frames grow it once.
    private const int InitialBufferBytes = 4 * 1024;

    // A buffer that grew past 256 KiB for one large frame is dropped afterwards rather than pinned for the
    // connection's life (a Send is at most 32 KiB of content, so only huge Subscribe frames get there).
    private const int MaxRetainedBufferBytes = 256 * 1024;

    /// <summary>The next request id. Ids start at 1 and skip 0 on wrap-around: 0 means "answers no request".</summary>
    public uint NextRequestId()
    {
        var id = (uint)Interlocked.Increment(ref _nextRequestId);
        return id != 0 ? id : (uint)Interlocked.Increment(ref _nextRequestId);
    }

    public void SetHello(HelloFrame hello) => _hello.TrySetResult(hello);

    public void FailHello(Exception error) => _hello.TrySetException(error);

    /// <summary>Sends <see cref="Buffer"/>'s contents as one binary message. Caller holds <see cref="SendLock"/>.</summary>
    public async ValueTask FlushBufferAsync()
    {
        await Socket.SendAsync(Buffer.WrittenMemory, WebSocketMessageType.Binary, WebSocketMessageFlags.EndOfMessage, Token)
            .ConfigureAwait(false);
        if (Buffer.Capacity > MaxRetainedBufferBytes)
        {
            Buffer = new ArrayBufferWriter<byte>(InitialBufferBytes);
        }
    }

    /// <summary>Stops every socket operation; idempotent.</summary>
    public void Abort()
    {
        if (Volatile.Read(ref _disposed) == 0)
        {
            try
            {
                _abort.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // Lost a race with Dispose: already torn down.
            }

            Socket.Abort();
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _abort.Cancel();
            Socket.Dispose();
            _abort.Dispose();
            _hello.TrySetException(new ObjectDisposedException(nameof(Connection)));
            _ = _hello.Task.Exception; // observed: nobody may be waiting any more
        }
    }
}

/// <summary>How a connection ended: a close frame (status and reason) or an error.</summary>
internal readonly record struct ConnectionEnd(WebSocketCloseStatus? CloseStatus, string? Reason, Exception? Error)
{
    public int? Code => CloseStatus is { } s ? (int)s : null;

    public override string ToString() =>
        CloseStatus is { } s ? $"closed by server: {(int)s} {Reason}" : $"connection lost: {Error?.Message ?? "unknown"}";
}
