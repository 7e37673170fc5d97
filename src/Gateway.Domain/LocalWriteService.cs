using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Threading.Channels;
using Gateway.Domain.Internal;
using Gateway.Domain.Ports;
using Gateway.Protocol;

namespace Gateway.Domain;

/// <summary>
/// The embedded write service: validates, authorizes, deduplicates, sequences and durably commits sends and
/// membership changes through ONE commit loop, then publishes the canonical events in commit order.
/// </summary>
/// <remarks>
/// <para>
/// Thread safety: every public member may be called concurrently from any thread. All state changes happen on
/// the commit loop, which drains a bounded queue and group-commits every send it finds (up to
/// <see cref="WriteServiceOptions.MaxBatchSize"/>) in one synced store write. Membership changes go through the
/// same loop, so their order relative to sends is total: once <see cref="RemoveMemberAsync"/> has completed, the
/// <see cref="EventTypes.MemberRemoved"/> event precedes every later <see cref="EventTypes.MessageCreated"/>,
/// and the removed user's sends fail.
/// </para>
/// <para>
/// The service is also the <see cref="IMembership"/> authority in embedded mode: the member sets it caches are
/// changed only by the loop after the store has made the change durable, and readers see immutable snapshots.
/// </para>
/// <para>
/// The service does not own the store or the bus: dispose it first, then them.
/// </para>
/// </remarks>
public sealed partial class LocalWriteService : IWriteService, IMembership, IAsyncDisposable
{
    private const string UnavailableMessage = "the write service is shut down";
    private const string ChatMissingMessage = "the chat does not exist";

    private readonly IChatStore _store;
    private readonly IEventBus _bus;
    private readonly TimeProvider _time;
    private readonly int _maxContentBytes;
    private readonly long _maxExpiresInMs;
    private readonly Action<EventEnvelope, Exception>? _onPublishError;
    private readonly Channel<PendingCommand> _queue;
    private readonly ConcurrentDictionary<ChatKey, ChatState> _chats = new();

    // Guards reader inserts against evictions: bumped (under the lock) by every eviction, checked (under the lock)
    // by a reader before it caches what it read from the store.
    private readonly object _cacheLock = new();
    private long _cacheGeneration;
    private readonly Task _loop;
    private readonly IDisposable _queueGauge;
    private int _disposed;

    /// <summary>Starts the commit loop.</summary>
    /// <param name="store">The durable store; every write it makes is synced before it returns.</param>
    /// <param name="bus">Where committed events are published.</param>
    /// <param name="options">Limits; defaults when null.</param>
    /// <param name="timeProvider">Clock for sentAt, expiry checks and event times; <see cref="TimeProvider.System"/> when null.</param>
    public LocalWriteService(IChatStore store, IEventBus bus, WriteServiceOptions? options = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(bus);
        options ??= new WriteServiceOptions();
        ArgumentOutOfRangeException.ThrowIfNegative(options.MaxContentBytes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.MaxExpiresInMs);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.MaxBatchSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.MaxQueuedCommands);

        _store = store;
        _bus = bus;
        _time = timeProvider ?? TimeProvider.System;
        _maxContentBytes = options.MaxContentBytes;
        _maxExpiresInMs = options.MaxExpiresInMs;
        _maxBatchSize = options.MaxBatchSize;
        _onPublishError = options.OnPublishError;
        _batch = new List<PendingCommand>(_maxBatchSize);
        _queue = Channel.CreateBounded<PendingCommand>(new BoundedChannelOptions(options.MaxQueuedCommands)
        {
            SingleReader = true,
            SingleWriter = false,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _loop = StartCommitThread();
        _queueGauge = WriteMetrics.AddQueueSource(this, () => _queue.Reader.Count);
    }

    /// <summary>True while the commit loop runs (readiness): false once it has stopped, after <see cref="DisposeAsync"/>
    /// or because it failed (<see cref="CommitLoopFault"/>).</summary>
    public bool IsCommitLoopRunning => !_loop.IsCompleted;

    /// <summary>Why the commit loop stopped, if it failed.</summary>
    public Exception? CommitLoopFault => _loop.Exception?.GetBaseException();

    /// <inheritdoc />
    /// <remarks>
    /// Validation runs on the caller's thread, so a malformed send never reaches the loop. The content is not copied:
    /// the committed message, its store write and its event use the command's memory, which the caller hands over
    /// (<see cref="IWriteService.SendAsync"/>). The token is honoured only while the send waits in the queue; once the
    /// loop has taken it, it commits or fails as a whole with its batch.
    /// </remarks>
    public ValueTask<SendResult> SendAsync(SendMessage command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<SendResult>(cancellationToken);
        }

        if (!Validation.TryValidateSend(command, NowMs(), _maxContentBytes, _maxExpiresInMs, out var error))
        {
            return new ValueTask<SendResult>(SendResult.Fail(ErrorCode.ValidationFailed, error));
        }

        var op = new SendCommand(command, cancellationToken);
        return Enqueue(op);
    }

    /// <inheritdoc />
    /// <remarks>Fails with <see cref="ErrorCode.ValidationFailed"/> when <paramref name="members"/> is empty.
    /// Publishes one <see cref="EventTypes.MemberAdded"/> per user that was not already a member.</remarks>
    public ValueTask<AdminResult> CreateChatAsync(string tenantId, string chatId, IReadOnlyCollection<string> members, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(members);
        if (ValidateChat(tenantId, chatId) is { } chatError)
        {
            return new ValueTask<AdminResult>(chatError);
        }

        if (members.Count == 0)
        {
            return new ValueTask<AdminResult>(AdminResult.Fail(ErrorCode.ValidationFailed, Validation.Messages.Members));
        }

        var users = new string[members.Count];
        var i = 0;
        foreach (var user in members)
        {
            if (!Validation.IsValidUserId(user))
            {
                return new ValueTask<AdminResult>(AdminResult.Fail(ErrorCode.ValidationFailed, Validation.Messages.UserId));
            }

            users[i++] = user;
        }

        return Enqueue(new AdminCommand(AdminKind.CreateChat, tenantId, chatId, users, cancellationToken));
    }

    /// <inheritdoc />
    /// <remarks>The chat must exist (see <see cref="CreateChatAsync"/>), else <see cref="ErrorCode.NotMember"/>.
    /// Publishes <see cref="EventTypes.MemberAdded"/> only when the user was not already a member.
    /// Who may add members is the caller's decision: this service checks syntax and existence only.</remarks>
    public ValueTask<AdminResult> AddMemberAsync(string tenantId, string chatId, string userId, CancellationToken cancellationToken = default) =>
        EnqueueSingleUser(AdminKind.AddMember, tenantId, chatId, userId, cancellationToken);

    /// <inheritdoc />
    /// <remarks>Removing a non-member, or from a chat that does not exist, succeeds and publishes nothing.</remarks>
    public ValueTask<AdminResult> RemoveMemberAsync(string tenantId, string chatId, string userId, CancellationToken cancellationToken = default) =>
        EnqueueSingleUser(AdminKind.RemoveMember, tenantId, chatId, userId, cancellationToken);

    /// <inheritdoc />
    /// <remarks>Answers from the cached snapshot when the chat is cached (no allocation, no I/O); otherwise reads the
    /// store once and caches the chat. Malformed ids are simply not members.</remarks>
    public ValueTask<bool> IsMemberAsync(string tenantId, string chatId, string userId, CancellationToken cancellationToken = default)
    {
        if (!Validation.IsValidId(tenantId) || !Validation.IsValidId(chatId) || !Validation.IsValidUserId(userId))
        {
            return new ValueTask<bool>(false);
        }

        if (_chats.TryGetValue(new ChatKey(tenantId, chatId), out var chat))
        {
            return new ValueTask<bool>(chat.Members.Contains(userId));
        }

        return IsMemberSlowAsync(new ChatKey(tenantId, chatId), userId, cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>The members in no particular order; empty when the chat does not exist.</remarks>
    public async ValueTask<IReadOnlyList<string>> GetMembersAsync(string tenantId, string chatId, CancellationToken cancellationToken = default)
    {
        if (!Validation.IsValidId(tenantId) || !Validation.IsValidId(chatId))
        {
            return [];
        }

        var key = new ChatKey(tenantId, chatId);
        var chat = _chats.TryGetValue(key, out var cached) ? cached : await LoadChatAsync(key, cancellationToken).ConfigureAwait(false);
        return chat is null ? [] : [.. chat.Members];
    }

    /// <summary>
    /// Stops taking commands (later ones get <see cref="ErrorCode.Unavailable"/>), finishes every command already
    /// queued, then returns. Does not dispose the store or the bus.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _queue.Writer.TryComplete();
            WakeCommitThread();
        }

        await _loop.ConfigureAwait(false);
        _queueGauge.Dispose();
        _wake.Dispose(); // the commit thread has returned
    }

    private static AdminResult? ValidateChat(string tenantId, string chatId) =>
        !Validation.IsValidId(tenantId) ? AdminResult.Fail(ErrorCode.ValidationFailed, Validation.Messages.TenantId)
        : !Validation.IsValidId(chatId) ? AdminResult.Fail(ErrorCode.ValidationFailed, Validation.Messages.ChatId)
        : null;

    private ValueTask<AdminResult> EnqueueSingleUser(AdminKind kind, string tenantId, string chatId, string userId, CancellationToken cancellationToken)
    {
        if (ValidateChat(tenantId, chatId) is { } chatError)
        {
            return new ValueTask<AdminResult>(chatError);
        }

        if (!Validation.IsValidUserId(userId))
        {
            return new ValueTask<AdminResult>(AdminResult.Fail(ErrorCode.ValidationFailed, Validation.Messages.UserId));
        }

        return Enqueue(new AdminCommand(kind, tenantId, chatId, [userId], cancellationToken));
    }

    private ValueTask<TResult> Enqueue<TResult>(PendingCommand<TResult> op)
    {
        if (op.CancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<TResult>(op.CancellationToken);
        }

        if (Volatile.Read(ref _disposed) != 0)
        {
            op.CompleteFailed(ErrorCode.Unavailable, UnavailableMessage);
            return op.AsValueTask();
        }

        // Fast path: room in the queue. TryWrite also fails once the queue is completed; the slow path tells the two apart.
        if (_queue.Writer.TryWrite(op))
        {
            WakeCommitThread();
            return op.AsValueTask();
        }

        return EnqueueSlowAsync(op);
    }

    private async ValueTask<TResult> EnqueueSlowAsync<TResult>(PendingCommand<TResult> op)
    {
        try
        {
            await _queue.Writer.WriteAsync(op, op.CancellationToken).ConfigureAwait(false);
            WakeCommitThread();
        }
        catch (ChannelClosedException)
        {
            op.CompleteFailed(ErrorCode.Unavailable, UnavailableMessage);
        }

        return await op.AsValueTask().ConfigureAwait(false);
    }

    private async ValueTask<bool> IsMemberSlowAsync(ChatKey key, string userId, CancellationToken cancellationToken)
    {
        var chat = await LoadChatAsync(key, cancellationToken).ConfigureAwait(false);
        return chat is not null && chat.Members.Contains(userId);
    }

    /// <summary>
    /// Reads a chat's members from the store and caches them, or returns null (and caches nothing, so unknown ids
    /// cannot grow the cache) when the chat does not exist. Used by readers and by the loop.
    /// </summary>
    /// <remarks>
    /// Why a reader may populate the cache: the loop caches a chat before it changes it (it loads through here
    /// first) and only ever mutates the instance in the cache, so a reader's <c>GetOrAdd</c> either loses to the
    /// loop's instance or inserts a snapshot that no change has yet superseded.
    /// </remarks>
    private async ValueTask<ChatState?> LoadChatAsync(ChatKey key, CancellationToken cancellationToken)
    {
        while (true)
        {
            var generation = Interlocked.Read(ref _cacheGeneration);
            if (!await _store.ChatExistsAsync(key.TenantId, key.ChatId, cancellationToken).ConfigureAwait(false))
            {
                return null;
            }

            var members = await _store.GetMembersAsync(key.TenantId, key.ChatId, cancellationToken).ConfigureAwait(false);
            lock (_cacheLock)
            {
                // An eviction while we read means a write failed half-way: our snapshot may predate a change the
                // store now holds. Read again rather than use or cache it (evictions are rare: failed writes only).
                if (_cacheGeneration == generation)
                {
                    return _chats.GetOrAdd(key, new ChatState(ImmutableHashSet.CreateRange(StringComparer.Ordinal, members)));
                }
            }
        }
    }

    /// <summary>Forgets a chat after a failed write, so the next use reads the store again.</summary>
    private void Evict(ChatKey key)
    {
        lock (_cacheLock)
        {
            _cacheGeneration++;
            _chats.TryRemove(key, out _);
        }
    }

    private long NowMs() => _time.GetUtcNow().ToUnixTimeMilliseconds();
}
