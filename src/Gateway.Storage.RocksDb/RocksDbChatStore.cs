using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using Gateway.Domain;
using Gateway.Domain.Ports;
using Gateway.Storage.RocksDb.Internal;
using RocksDbSharp;

namespace Gateway.Storage.RocksDb;

/// <summary>
/// <see cref="IChatStore"/> on an embedded RocksDB: one database, the default column family, binary big-endian keys
/// laid out as <c>kind | tenant | chat | …</c> with length-prefixed components (see <c>Internal/Keys.cs</c> for what
/// each key holds).
/// </summary>
/// <remarks>
/// <para>
/// Durability: every write method builds ONE <see cref="WriteBatch"/> and writes it with <c>sync = true</c>, so the
/// WAL is fsynced before the method returns. A batch is atomic: a crash leaves all of it or none of it. This is
/// what lets the write service say "acknowledged means durable".
/// </para>
/// <para>
/// Thread safety: reads run concurrently from any thread. Writes are serialized by a lock (they are read-modify-write
/// on heads and membership rows), which costs nothing in embedded mode where one commit loop is the only writer.
/// All methods complete synchronously; the <see cref="ValueTask"/> shape is the port's.
/// </para>
/// <para>
/// <see cref="Dispose"/> waits for calls in progress, then closes the database; later calls throw
/// <see cref="ObjectDisposedException"/>.
/// </para>
/// </remarks>
public sealed class RocksDbChatStore : IChatStore, IProjectionStore
{
    private readonly RocksDbSharp.RocksDb _db;
    private readonly WriteOptions _syncWrite = new WriteOptions().SetSync(true);
    private readonly TimeProvider _time;
    private readonly Lock _writeLock = new();

    // Guarded by _writeLock: reused so that a commit allocates only what RocksDB copies out of them.
    private readonly ArrayBufferWriter<byte> _valueBuffer = new(4096);
    private readonly Dictionary<(string TenantId, string ChatId), ulong> _batchHeads = [];

    // Guarded by _writeLock: what a projection batch has changed so far, so later changes of the same batch see it.
    private readonly Dictionary<(string TenantId, string ChatId, string UserId), bool> _batchMembers = [];
    private readonly HashSet<(string TenantId, string ChatId)> _batchChats = [];

    private int _active;
    private int _disposed;

    /// <summary>Opens (creating if missing) the database in <paramref name="path"/>.</summary>
    /// <param name="path">Directory of the database.</param>
    /// <param name="options">Tuning; defaults when null.</param>
    /// <param name="timeProvider">Clock used to leave expired messages out of reads; <see cref="TimeProvider.System"/> when null.</param>
    public RocksDbChatStore(string path, RocksDbChatStoreOptions? options = null, TimeProvider? timeProvider = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new RocksDbChatStoreOptions();
        ArgumentOutOfRangeException.ThrowIfNegative(options.BlockCacheBytes);
        ArgumentOutOfRangeException.ThrowIfNegative(options.BloomBitsPerKey);
        _time = timeProvider ?? TimeProvider.System;

        var table = new BlockBasedTableOptions()
            .SetBlockCache(Cache.CreateLru((ulong)options.BlockCacheBytes))
            .SetWholeKeyFiltering(true);
        if (options.BloomBitsPerKey > 0)
        {
            // Full (not the legacy block-based) filter.
            table.SetFilterPolicy(BloomFilterPolicy.Create(options.BloomBitsPerKey, false));
        }

        var dbOptions = new DbOptions()
            .SetCreateIfMissing(true)
            .SetBlockBasedTableFactory(table);
        Directory.CreateDirectory(path);
        _db = RocksDbSharp.RocksDb.Open(dbOptions, path);
        Path = path;
    }

    /// <summary>The database directory.</summary>
    public string Path { get; }

    /// <inheritdoc />
    public ValueTask<ulong> GetHeadAsync(string tenantId, string chatId, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Enter();
        try
        {
            return new ValueTask<ulong>(ReadHead(tenantId, chatId));
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<ChatMessage>> ReadAfterAsync(string tenantId, string chatId, ulong afterSeq, int limit, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        cancellationToken.ThrowIfCancellationRequested();
        if (limit == 0 || afterSeq == ulong.MaxValue)
        {
            return new ValueTask<IReadOnlyList<ChatMessage>>(Array.Empty<ChatMessage>());
        }

        Enter();
        try
        {
            return new ValueTask<IReadOnlyList<ChatMessage>>(ScanMessages(tenantId, chatId, afterSeq + 1, ascending: true, limit));
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<ChatMessage>> ReadBeforeAsync(string tenantId, string chatId, ulong beforeSeq, int limit, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        cancellationToken.ThrowIfCancellationRequested();
        if (limit == 0 || beforeSeq == 1)
        {
            return new ValueTask<IReadOnlyList<ChatMessage>>(Array.Empty<ChatMessage>());
        }

        Enter();
        try
        {
            // beforeSeq 0 means "from the newest": start at the largest possible seq.
            var start = beforeSeq == 0 ? ulong.MaxValue : beforeSeq - 1;
            return new ValueTask<IReadOnlyList<ChatMessage>>(ScanMessages(tenantId, chatId, start, ascending: false, limit));
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc />
    public ValueTask<IdempotencyRecord?> GetIdempotencyAsync(string tenantId, string senderId, string clientMessageId, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Enter();
        try
        {
            Span<byte> key = stackalloc byte[Keys.MaxKeyBytes];
            var length = Keys.Write(key, Keys.Idempotency, tenantId, senderId, clientMessageId);
            var value = _db.Get(key[..length]);
            return new ValueTask<IdempotencyRecord?>(value is null ? null : Values.ReadIdempotency(value));
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// Writes each message, its idempotency record and each touched chat's new head in one synced batch. The seqs
    /// must continue each chat's stored head densely (head + 1, head + 2, …, in list order); anything else throws
    /// <see cref="InvalidOperationException"/> and writes nothing, because a hole or an overwrite would break the
    /// guarantees every reader relies on.
    /// </remarks>
    public ValueTask AppendAsync(IReadOnlyList<ChatMessage> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        cancellationToken.ThrowIfCancellationRequested();
        if (messages.Count == 0)
        {
            return ValueTask.CompletedTask;
        }

        Enter();
        try
        {
            lock (_writeLock)
            {
                try
                {
                    AppendLocked(messages);
                }
                finally
                {
                    _batchHeads.Clear();
                }
            }

            return ValueTask.CompletedTask;
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc />
    /// <remarks>In key order: shorter ids first (the length byte leads), then bytewise. Callers needing another order sort.</remarks>
    public ValueTask<IReadOnlyList<string>> GetMembersAsync(string tenantId, string chatId, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Enter();
        try
        {
            return new ValueTask<IReadOnlyList<string>>(ScanLastComponents(Keys.Member, tenantId, chatId));
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>The chats <paramref name="userId"/> is a member of (from the reverse index), in key order like
    /// <see cref="GetMembersAsync"/>.</summary>
    public ValueTask<IReadOnlyList<string>> GetChatsOfUserAsync(string tenantId, string userId, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Enter();
        try
        {
            return new ValueTask<IReadOnlyList<string>>(ScanLastComponents(Keys.UserChat, tenantId, userId));
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc />
    public ValueTask<bool> ChatExistsAsync(string tenantId, string chatId, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Enter();
        try
        {
            Span<byte> key = stackalloc byte[Keys.MaxKeyBytes];
            var length = Keys.Write(key, Keys.ChatMarker, tenantId, chatId);
            return new ValueTask<bool>(_db.HasKey(key[..length]));
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc />
    /// <remarks>Members already present keep their original joinedAt; the chat keeps its original createdAt.</remarks>
    public ValueTask AddMembersAsync(string tenantId, string chatId, IReadOnlyCollection<string> userIds, long joinedAt, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(userIds);
        cancellationToken.ThrowIfCancellationRequested();
        Enter();
        try
        {
            lock (_writeLock)
            {
                Span<byte> key = stackalloc byte[Keys.MaxKeyBytes];
                using var batch = new WriteBatch();
                var length = Keys.Write(key, Keys.ChatMarker, tenantId, chatId);
                if (!_db.HasKey(key[..length]))
                {
                    batch.Put(key[..length], Timestamp(joinedAt));
                }

                foreach (var userId in userIds)
                {
                    length = Keys.Write(key, Keys.Member, tenantId, chatId, userId);
                    if (_db.HasKey(key[..length]))
                    {
                        continue;
                    }

                    PutMember(batch, key, tenantId, chatId, userId, joinedAt);
                }

                if (batch.Count() > 0)
                {
                    WriteSynced(batch);
                }
            }

            return ValueTask.CompletedTask;
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc />
    public ValueTask<bool> RemoveMemberAsync(string tenantId, string chatId, string userId, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Enter();
        try
        {
            lock (_writeLock)
            {
                Span<byte> key = stackalloc byte[Keys.MaxKeyBytes];
                var length = Keys.Write(key, Keys.Member, tenantId, chatId, userId);
                if (!_db.HasKey(key[..length]))
                {
                    return new ValueTask<bool>(false);
                }

                using var batch = new WriteBatch();
                DeleteMember(batch, key, tenantId, chatId, userId);
                WriteSynced(batch);
                return new ValueTask<bool>(true);
            }
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc />
    public ValueTask<ulong> GetCheckpointAsync(string log, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Enter();
        try
        {
            Span<byte> key = stackalloc byte[Keys.MaxKeyBytes];
            var length = Keys.Write(key, Keys.Checkpoint, log);
            Span<byte> value = stackalloc byte[sizeof(ulong)];
            return new ValueTask<ulong>(_db.GetFixedSizeValue(key[..length], value) ? BinaryPrimitives.ReadUInt64BigEndian(value) : 0);
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc />
    /// <remarks>One synced <see cref="WriteBatch"/> holds every change and the checkpoint. Changes later in the list see
    /// the earlier ones (a member added then removed in one batch ends removed).</remarks>
    public ValueTask<ProjectionResult> ApplyAsync(string log, ulong checkpoint, IReadOnlyList<ProjectionChange> changes, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(log);
        ArgumentNullException.ThrowIfNull(changes);
        cancellationToken.ThrowIfCancellationRequested();
        Enter();
        try
        {
            lock (_writeLock)
            {
                try
                {
                    return new ValueTask<ProjectionResult>(ApplyLocked(log, checkpoint, changes));
                }
                finally
                {
                    _batchHeads.Clear();
                    _batchMembers.Clear();
                    _batchChats.Clear();
                }
            }
        }
        finally
        {
            Exit();
        }
    }

    private sealed class HealthState
    {
        public long Errors;
        public long WritesWhenSeen;
    }

    private readonly HealthState _health = new();
    private long _syncedWrites;

    /// <summary>Every synced batch goes through here, so that readiness can tell a recovered store from a failed one.</summary>
    private void WriteSynced(WriteBatch batch)
    {
        _db.Write(batch, _syncWrite);
        Interlocked.Increment(ref _syncedWrites);
    }

    /// <summary>
    /// Readiness: true while the database is open and has taken no background error (a failed flush or compaction, e.g.
    /// a full disk, makes RocksDB refuse every later write until it is reopened); otherwise false with the reason.
    /// </summary>
    public bool IsHealthy(out string? problem)
    {
        // rocksdb.background-errors only ever grows, also after RocksDB recovered by itself (e.g. from a retryable I/O
        // error): a count is a problem until a synced write succeeds after it was first seen.
        if (Volatile.Read(ref _disposed) != 0)
        {
            problem = "the store is closed";
            return false;
        }

        Enter();
        try
        {
            var errors = long.TryParse(_db.GetProperty("rocksdb.background-errors"), out var count) ? count : 0;
            lock (_health)
            {
                if (errors != _health.Errors)
                {
                    _health.Errors = errors;
                    _health.WritesWhenSeen = Interlocked.Read(ref _syncedWrites);
                }

                if (errors == 0 || Interlocked.Read(ref _syncedWrites) > _health.WritesWhenSeen)
                {
                    problem = null;
                    return true;
                }
            }

            problem = $"RocksDB reports {errors} background error(s) and no write has succeeded since";
            return false;
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Waits for calls in progress, then closes the database.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // Calls that passed Enter before the flag was set finish first; new ones are refused by Enter.
        var spin = default(SpinWait);
        while (Volatile.Read(ref _active) != 0)
        {
            spin.SpinOnce();
        }

        _db.Dispose();
    }

    private void AppendLocked(IReadOnlyList<ChatMessage> messages)
    {
        Span<byte> key = stackalloc byte[Keys.MaxKeyBytes];
        using var batch = new WriteBatch();
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i];
            ArgumentNullException.ThrowIfNull(message);
            var chat = (message.TenantId, message.ChatId);
            if (!_batchHeads.TryGetValue(chat, out var head))
            {
                head = ReadHead(message.TenantId, message.ChatId);
            }

            if (message.Seq != head + 1)
            {
                ThrowNotDense(message, head);
            }

            _batchHeads[chat] = message.Seq;
            PutMessage(batch, key, message);
        }

        Span<byte> headValue = stackalloc byte[sizeof(ulong)];
        foreach (var ((tenantId, chatId), head) in _batchHeads)
        {
            var length = Keys.Write(key, Keys.Head, tenantId, chatId);
            BinaryPrimitives.WriteUInt64BigEndian(headValue, head);
            batch.Put(key[..length], headValue);
        }

        WriteSynced(batch);
    }

    private ProjectionResult ApplyLocked(string log, ulong checkpoint, IReadOnlyList<ProjectionChange> changes)
    {
        Span<byte> key = stackalloc byte[Keys.MaxKeyBytes];
        using var batch = new WriteBatch();
        int messages = 0, stale = 0;
        foreach (var change in changes)
        {
            switch (change.Kind)
            {
                case ProjectionChangeKind.Message:
                    var message = change.Message ?? throw new ArgumentException("a Message change without a message", nameof(changes));
                    var chat = (message.TenantId, message.ChatId);
                    if (!_batchHeads.TryGetValue(chat, out var head))
                    {
                        head = ReadHead(message.TenantId, message.ChatId);
                    }

                    if (message.Seq <= head)
                    {
                        stale++;
                        continue;
                    }

                    if (message.Seq != head + 1)
                    {
                        ThrowNotDense(message, head);
                    }

                    _batchHeads[chat] = message.Seq;
                    PutMessage(batch, key, message);
                    messages++;
                    break;
                case ProjectionChangeKind.MembersAdded:
                    var chatKey = (change.TenantId, change.ChatId);
                    var length = Keys.Write(key, Keys.ChatMarker, change.TenantId, change.ChatId);
                    if (!_batchChats.Contains(chatKey) && !_db.HasKey(key[..length]))
                    {
                        batch.Put(key[..length], Timestamp(change.At));
                    }

                    _batchChats.Add(chatKey);
                    foreach (var user in change.Users)
                    {
                        if (IsMemberInBatch(key, change.TenantId, change.ChatId, user))
                        {
                            continue;
                        }

                        PutMember(batch, key, change.TenantId, change.ChatId, user, change.At);
                        _batchMembers[(change.TenantId, change.ChatId, user)] = true;
                    }

                    break;
                case ProjectionChangeKind.MembersRemoved:
                    foreach (var user in change.Users)
                    {
                        if (!IsMemberInBatch(key, change.TenantId, change.ChatId, user))
                        {
                            continue;
                        }

                        DeleteMember(batch, key, change.TenantId, change.ChatId, user);
                        _batchMembers[(change.TenantId, change.ChatId, user)] = false;
                    }

                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(changes), change.Kind, "unknown projection change");
            }
        }

        Span<byte> u64 = stackalloc byte[sizeof(ulong)];
        foreach (var ((tenantId, chatId), head) in _batchHeads)
        {
            var length = Keys.Write(key, Keys.Head, tenantId, chatId);
            BinaryPrimitives.WriteUInt64BigEndian(u64, head);
            batch.Put(key[..length], u64);
        }

        var checkpointLength = Keys.Write(key, Keys.Checkpoint, log);
        BinaryPrimitives.WriteUInt64BigEndian(u64, checkpoint);
        batch.Put(key[..checkpointLength], u64);
        WriteSynced(batch);
        return new ProjectionResult(messages, stale);
    }

    private bool IsMemberInBatch(Span<byte> key, string tenantId, string chatId, string userId)
    {
        if (_batchMembers.TryGetValue((tenantId, chatId, userId), out var member))
        {
            return member;
        }

        var length = Keys.Write(key, Keys.Member, tenantId, chatId, userId);
        return _db.HasKey(key[..length]);
    }

    /// <summary>A membership row and its reverse-index row (chats of a user), both with the join time.</summary>
    private void PutMember(WriteBatch batch, Span<byte> key, string tenantId, string chatId, string userId, long joinedAt)
    {
        var length = Keys.Write(key, Keys.Member, tenantId, chatId, userId);
        batch.Put(key[..length], Timestamp(joinedAt));
        length = Keys.Write(key, Keys.UserChat, tenantId, userId, chatId);
        batch.Put(key[..length], Timestamp(joinedAt));
    }

    private static void DeleteMember(WriteBatch batch, Span<byte> key, string tenantId, string chatId, string userId)
    {
        var length = Keys.Write(key, Keys.Member, tenantId, chatId, userId);
        batch.Delete(key[..length]);
        length = Keys.Write(key, Keys.UserChat, tenantId, userId, chatId);
        batch.Delete(key[..length]);
    }

    private void PutMessage(WriteBatch batch, Span<byte> key, ChatMessage message)
    {
        var length = Keys.WriteMessage(key, message.TenantId, message.ChatId, message.Seq);
        _valueBuffer.ResetWrittenCount();
        Values.WriteMessage(_valueBuffer, message);
        batch.Put(key[..length], _valueBuffer.WrittenSpan);

        length = Keys.Write(key, Keys.Idempotency, message.TenantId, message.SenderId, message.ClientMessageId);
        _valueBuffer.ResetWrittenCount();
        Values.WriteIdempotency(_valueBuffer, message);
        batch.Put(key[..length], _valueBuffer.WrittenSpan);
    }

    private ulong ReadHead(string tenantId, string chatId)
    {
        Span<byte> key = stackalloc byte[Keys.MaxKeyBytes];
        var length = Keys.Write(key, Keys.Head, tenantId, chatId);
        Span<byte> value = stackalloc byte[sizeof(ulong)];
        return _db.GetFixedSizeValue(key[..length], value) ? BinaryPrimitives.ReadUInt64BigEndian(value) : 0;
    }

    private ReadOnlySpan<byte> Timestamp(long unixMs)
    {
        _valueBuffer.ResetWrittenCount();
        Values.WriteTimestamp(_valueBuffer, unixMs);
        return _valueBuffer.WrittenSpan;
    }

    /// <summary>
    /// Reads up to <paramref name="limit"/> live messages of one chat starting at <paramref name="startSeq"/>
    /// (inclusive), ascending or descending. The iterator is bounded to the chat's prefix with RocksDB's iterate
    /// bounds, so it stops at the chat's edge without reading the neighbour's keys.
    /// </summary>
    private unsafe List<ChatMessage> ScanMessages(string tenantId, string chatId, ulong startSeq, bool ascending, int limit)
    {
        Span<byte> lower = stackalloc byte[Keys.MaxKeyBytes];
        Span<byte> upper = stackalloc byte[Keys.MaxKeyBytes];
        Span<byte> start = stackalloc byte[Keys.MaxKeyBytes];
        var prefixLength = Keys.Write(lower, Keys.Message, tenantId, chatId);
        lower[..prefixLength].CopyTo(upper);
        var upperLength = Keys.PrefixSuccessor(upper[..prefixLength]);
        var startLength = Keys.WriteMessage(start, tenantId, chatId, startSeq);

        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var result = new List<ChatMessage>(Math.Min(limit, 64));
        fixed (byte* lowerPtr = lower)
        fixed (byte* upperPtr = upper)
        {
            // The bounds point into this stack frame; the native side keeps only the pointers, and the iterator
            // that uses them is disposed before the frame ends.
            var readOptions = new ReadOptions()
                .SetIterateLowerBound(lowerPtr, (ulong)prefixLength)
                .SetIterateUpperBound(upperPtr, (ulong)upperLength);
            using var iterator = _db.NewIterator(null, readOptions);
            if (ascending)
            {
                iterator.Seek(start[..startLength]);
            }
            else
            {
                iterator.SeekForPrev(start[..startLength]);
            }

            while (iterator.Valid() && result.Count < limit)
            {
                var key = iterator.GetKeySpan();
                if (key.Length != prefixLength + sizeof(ulong))
                {
                    Keys.ThrowCorrupt();
                }

                var seq = BinaryPrimitives.ReadUInt64BigEndian(key[prefixLength..]);

                // One copy out of RocksDB-owned memory: the message's content is a slice of this array.
                var message = Values.ReadMessage(iterator.GetValueSpan().ToArray(), tenantId, chatId, seq);
                if (!message.IsExpiredAt(now))
                {
                    result.Add(message);
                }

                if (ascending)
                {
                    iterator.Next();
                }
                else
                {
                    iterator.Prev();
                }
            }

            GC.KeepAlive(readOptions);
        }

        return result;
    }

    /// <summary>Lists the last key component of every key under <c>kind | a | b</c> (members, chats of a user).</summary>
    private unsafe List<string> ScanLastComponents(byte kind, string a, string b)
    {
        Span<byte> lower = stackalloc byte[Keys.MaxKeyBytes];
        Span<byte> upper = stackalloc byte[Keys.MaxKeyBytes];
        var prefixLength = Keys.Write(lower, kind, a, b);
        lower[..prefixLength].CopyTo(upper);
        var upperLength = Keys.PrefixSuccessor(upper[..prefixLength]);

        var result = new List<string>();
        fixed (byte* lowerPtr = lower)
        fixed (byte* upperPtr = upper)
        {
            var readOptions = new ReadOptions()
                .SetIterateLowerBound(lowerPtr, (ulong)prefixLength)
                .SetIterateUpperBound(upperPtr, (ulong)upperLength);
            using var iterator = _db.NewIterator(null, readOptions);
            iterator.Seek(lower[..prefixLength]);
            while (iterator.Valid())
            {
                result.Add(Keys.ReadComponent(iterator.GetKeySpan()[prefixLength..]));
                iterator.Next();
            }

            GC.KeepAlive(readOptions);
        }

        return result;
    }

    private void Enter()
    {
        Interlocked.Increment(ref _active);
        if (Volatile.Read(ref _disposed) != 0)
        {
            Interlocked.Decrement(ref _active);
            ThrowDisposed();
        }
    }

    private void Exit() => Interlocked.Decrement(ref _active);

    [DoesNotReturn]
    private static void ThrowDisposed() => throw new ObjectDisposedException(nameof(RocksDbChatStore));

    [DoesNotReturn]
    private static void ThrowNotDense(ChatMessage message, ulong head) =>
        throw new InvalidOperationException(
            $"Message seq {message.Seq} of chat {message.ChatId} does not follow the chat's head {head}; nothing was written.");
}
