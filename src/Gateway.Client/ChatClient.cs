using System.Threading.Channels;
using Gateway.Client.Internal;
using Gateway.Protocol;

namespace Gateway.Client;

/// <summary>
/// A client of the <c>chatgw.v1</c> gateway: one WebSocket connection, resumed automatically from per-chat
/// cursors, with idempotent sends that are retried until acknowledged.
/// </summary>
/// <remarks>
/// <para><b>Thread safety.</b> <see cref="SendAsync"/>, <see cref="SendTextAsync"/>, <see cref="SendTypingAsync"/>,
/// <see cref="SubscribeAsync"/>, <see cref="UnsubscribeAsync"/>, <see cref="GetHistoryAsync"/>, <see cref="GetCursor"/>
/// and the counters may be
/// called concurrently from any thread. Events have exactly one reader: call <see cref="ReadEventsAsync"/> (or read
/// <see cref="Events"/>) from one loop only. <see cref="ConnectAsync"/> is called once, before anything else
/// that needs a connection. <see cref="DisposeAsync"/> may be called once from any thread and fails what is still
/// pending.</para>
/// <para><b>Backpressure.</b> Events go through a bounded buffer of <see cref="ChatClientOptions.EventBufferCapacity"/>.
/// When it is full the client stops reading the socket, which also delays answers to requests. So the event loop
/// must not wait for a request's answer while events are unread: send from another task, or read events
/// concurrently. Typing notices are the exception: they never wait for room, they are dropped and counted
/// (<see cref="TypingNoticesDropped"/>).</para>
/// <para><b>Ordering.</b> Sends are written in call order and, after a reconnect, written again in call order.
/// Events of one chat arrive in seq order, each exactly once; <see cref="DuplicatesDropped"/> and
/// <see cref="GapsDetected"/> count what the client had to repair.</para>
/// <para><b>Reconnect.</b> When the connection drops without the application asking, the client backs off with
/// jitter, reconnects (asking <see cref="ChatClientOptions.TokenProvider"/> for a token again), re-subscribes every
/// remembered chat from its cursor, then writes every unacknowledged send again with its original client message
/// id. Subscribe, unsubscribe and history requests in flight fail with <see cref="ChatClientException"/>
/// (<see cref="ErrorCode.Unavailable"/>). A close with 1002, 1003, 1007, 1008 or 1009 means a client bug and
/// ends the client instead of reconnecting in a loop; so does 4001 with a fixed token.</para>
/// <para><b>Typing.</b> <see cref="SendTypingAsync"/> writes a Typing frame and expects no answer; without a
/// connection the notice is dropped, not queued. Other members' <see cref="UserTypingFrame"/> notices come through
/// the event stream, in order with the messages, for subscribed chats only; they are never replayed and move no
/// cursor. Show "typing" for about 5 s after the last one.</para>
/// <para><b>Token refresh.</b> The server announces the token's expiry with TokenExpiring (by default a minute
/// before it). With a <see cref="ChatClientOptions.TokenProvider"/> the client asks it for a token and sends
/// RefreshToken on the live connection; TokenRefreshed moves <see cref="TokenExpiresAt"/> and counts in
/// <see cref="TokenRefreshes"/>. A refusal (<see cref="ErrorCode.Unauthenticated"/>), a provider failure or no
/// answer is logged and counted in <see cref="TokenRefreshFailures"/>, nothing more: the server closes with 4001
/// at the announced time and the reconnect asks the provider again. With a fixed token the notice is only logged,
/// and the 4001 close ends the client.</para>
/// <para><b>Drain.</b> A Drain frame means the server is shutting down. The client keeps using the connection
/// (sends are still written and acknowledged) for the frame's jittered delay, then stops handing it out, sends a
/// normal close (1000), keeps reading until the server's close reply so acks already on their way still count,
/// and reconnects at once (through the load balancer, so to another server) with the usual resume. When the
/// server closes with 1001 first, the client reconnects with the normal back-off. Either way an unacknowledged
/// send stays pending and is written again on the next connection with the same client message id, so it is
/// neither lost nor stored twice; a request issued during the switch waits for the next connection. With
/// <see cref="ChatClientOptions.AutoReconnect"/> off, the drain close ends the client.</para>
/// <para><b>Rate limits.</b> A send answered with <see cref="ErrorCode.RateLimited"/> is written again (same
/// client message id) after the error's retryAfterMs, or after the reconnect back-off when it has none; neither
/// the request-timeout rewrite nor a resume writes it earlier. Subscribe, unsubscribe and history requests fail
/// with a <see cref="ChatClientException"/> whose <see cref="ChatClientException.RetryAfter"/> carries the hint.
/// The client's own re-subscribe after a reconnect is sent again after the hint instead, from the cursors.</para>
/// </remarks>
public sealed partial class ChatClient : IAsyncDisposable
{
    private readonly ChatClientOptions _options;
    private readonly Channel<ServerFrame> _events;
    private readonly CancellationTokenSource _disposeCts = new();
    private readonly CancellationToken _disposeToken;

    // Guards _current, _ready, _unacked, _state, _fatal and _started.
    private readonly Lock _stateLock = new();
    private readonly Dictionary<long, PendingSend> _unacked = [];
    private TaskCompletionSource<Connection> _ready = NewReady();
    private Connection? _current;
    private ChatConnectionState _state = ChatConnectionState.Disconnected;
    private Exception? _fatal;
    private bool _started;
    private long _sendOrder;
    private int _connectionCount;

    // Guards _chats: written by the receive loop and UnsubscribeAsync, read by GetCursor from any thread.
    private readonly Lock _chatsLock = new();
    private readonly Dictionary<string, ChatState> _chats = new(StringComparer.Ordinal);

    private Task _runTask = Task.CompletedTask;
    private HelloFrame? _hello;
    private long _duplicatesDropped;
    private long _gapsDetected;
    private long _reconnects;
    private int _disposed;

    /// <summary>Creates a client; nothing is connected until <see cref="ConnectAsync"/>.</summary>
    public ChatClient(ChatClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(options.Endpoint);
        if (options.TokenProvider is null && string.IsNullOrEmpty(options.Token))
        {
            throw new ArgumentException("Set TokenProvider or Token.", nameof(options));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(options.EventBufferCapacity, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.RequestTimeout, TimeSpan.Zero, nameof(options));
        _options = options;
        _disposeToken = _disposeCts.Token;
        _events = Channel.CreateBounded<ServerFrame>(new BoundedChannelOptions(options.EventBufferCapacity)
        {
            // Only the receive loop of the current connection writes; only the application reads.
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    /// <summary>Raised (on a background thread) whenever <see cref="State"/> changes.</summary>
    public event EventHandler<ChatConnectionStateChangedEventArgs>? ConnectionStateChanged;

    /// <summary>The Hello frame of the current (or last) connection; null before the first connect.</summary>
    public HelloFrame? Hello => Volatile.Read(ref _hello);

    /// <summary>The connection state.</summary>
    public ChatConnectionState State
    {
        get
        {
            lock (_stateLock)
            {
                return _state;
            }
        }
    }

    /// <summary>Messages dropped because their seq was at or below the chat's cursor (the server promises 0).</summary>
    public long DuplicatesDropped => Interlocked.Read(ref _duplicatesDropped);

    /// <summary>
    /// Times a message (or caught-up notice) skipped past the cursor. Each one re-subscribes the chat from its
    /// cursor, except a hole still there right after such a re-subscribe: the server no longer has those seqs
    /// (e.g. expired disappearing messages), so it is counted, skipped and not re-requested forever.
    /// </summary>
    public long GapsDetected => Interlocked.Read(ref _gapsDetected);

    /// <summary>Successful automatic reconnects.</summary>
    public long Reconnects => Interlocked.Read(ref _reconnects);

    /// <summary>
    /// The events for the application: <see cref="MessageFrame"/>, <see cref="CaughtUpFrame"/>,
    /// <see cref="RevokedFrame"/> and <see cref="UserTypingFrame"/>. One reader only. Completes when the client is disposed, and completes with
    /// a <see cref="ChatClientException"/> when the client ends for good.
    /// </summary>
    public ChannelReader<ServerFrame> Events => _events.Reader;

    /// <summary>Reads <see cref="Events"/> as an async stream. One reader only.</summary>
    public IAsyncEnumerable<ServerFrame> ReadEventsAsync(CancellationToken cancellationToken = default) =>
        _events.Reader.ReadAllAsync(cancellationToken);

    /// <summary>The highest seq of <paramref name="chatId"/> handed to the application, or null when the chat
    /// is not subscribed (never was, unsubscribed, revoked).</summary>
    public ulong? GetCursor(string chatId)
    {
        ArgumentNullException.ThrowIfNull(chatId);
        lock (_chatsLock)
        {
            return _chats.TryGetValue(chatId, out var chat) ? chat.Cursor : null;
        }
    }

    /// <summary>Every subscribed chat with its cursor, e.g. to persist and pass to a later session.</summary>
    public IReadOnlyList<ChatCursor> GetCursors()
    {
        lock (_chatsLock)
        {
            return [.. _chats.Select(static kv => new ChatCursor(kv.Key, kv.Value.Cursor))];
        }
    }

    /// <summary>
    /// Connects and waits for the server's Hello. Call once. Failures of this first connect are thrown, not
    /// retried: <see cref="ChatClientException"/> (refused upgrade, wrong subprotocol), <see cref="TimeoutException"/>,
    /// or the socket's exception.
    /// </summary>
    public async Task ConnectAsync(CancellationToken cancellationToken = default)
    {
        lock (_stateLock)
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            if (_started)
            {
                throw new InvalidOperationException("ConnectAsync was already called.");
            }

            _started = true;
        }

        SetState(ChatConnectionState.Connecting, null, null);
        Connection conn;
        try
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposeToken);
            conn = await ConnectOnceAsync(linked.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            lock (_stateLock)
            {
                _started = false; // the application may try again
            }

            SetState(ChatConnectionState.Disconnected, null, e);
            throw;
        }

        await ResumeAsync(conn).ConfigureAwait(false);
        _runTask = RunAsync(conn);
    }

    /// <summary>
    /// Closes the connection (close code 1000) and stops. Pending sends fail with <see cref="ObjectDisposedException"/>;
    /// the event stream completes.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Connection? conn;
        lock (_stateLock)
        {
            conn = _current;
        }

        if (conn is not null)
        {
            await CloseGracefullyAsync(conn).ConfigureAwait(false);
        }

        await _disposeCts.CancelAsync().ConfigureAwait(false);
        try
        {
            await _runTask.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Log($"run loop ended with {e.GetType().Name}: {e.Message}");
        }

        var error = new ObjectDisposedException(nameof(ChatClient));
        Shutdown(error, completeEventsWith: null);
        SetState(ChatConnectionState.Closed, null, null);
        _disposeCts.Dispose();
    }

    private bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    private static TaskCompletionSource<Connection> NewReady() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private void SetState(ChatConnectionState state, int? closeStatus, Exception? error)
    {
        lock (_stateLock)
        {
            if (_state == state || _state == ChatConnectionState.Closed)
            {
                return;
            }

            _state = state;
        }

        try
        {
            ConnectionStateChanged?.Invoke(this, new ChatConnectionStateChangedEventArgs(state, closeStatus, error));
        }
        catch (Exception e)
        {
            // A throwing handler must not kill the reconnect loop.
            Log($"ConnectionStateChanged handler threw {e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>Ends the client for good: fails every waiter and every unacknowledged send.</summary>
    private void Shutdown(Exception error, Exception? completeEventsWith)
    {
        PendingSend[] sends;
        lock (_stateLock)
        {
            _fatal ??= error;
            _current = null;
            if (!_ready.TrySetException(error))
            {
                _ready = NewReady();
                _ready.TrySetException(error);
            }

            _ = _ready.Task.Exception; // observed here: waiters see it through WaitReadyAsync
            sends = [.. _unacked.Values];
            _unacked.Clear();
        }

        foreach (var send in sends)
        {
            send.Result.TrySetException(error);
        }

        _events.Writer.TryComplete(completeEventsWith);
    }

    private void Log(string message) => _options.Log?.Invoke(message);
}
