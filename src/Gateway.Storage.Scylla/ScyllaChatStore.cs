using System.Buffers.Binary;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Gateway.Cql;
using Gateway.Domain;
using Gateway.Domain.Ports;
using Microsoft.Extensions.Logging;

namespace Gateway.Storage.Scylla;

/// <summary>
/// The history store on ScyllaDB (or Apache Cassandra), through our CQL client: what <c>RocksDbChatStore</c> keeps, in
/// the tables of <see cref="ScyllaSchema"/>, shared by every writer of a distributed deployment.
/// </summary>
/// <remarks>
/// <para><b>Order of writes instead of atomicity.</b> Scylla has no multi-partition transaction, so a batch of changes is
/// written in an order that keeps every reader's view valid at each step: messages and idempotency records first,
/// then membership and chat heads, then (for a projection) the checkpoint. A head therefore never points past a message
/// that is not stored, and a crash between the steps leaves writes that the replay of the same entries repeats with
/// identical values. The messages of one batch are written concurrently, so until its heads are written they can be
/// visible with holes between them: reads forward stop at the head they read first and never return them.</para>
/// <para><b>Write timestamps.</b> A projection batch writes every cell with the batch's checkpoint (its last log
/// position) as the CQL write timestamp, and a checkpoint only grows, so a later entry's effect always wins over an
/// earlier one's — also when a writer that lost its lease, or a replay after a crash, writes late. The direct write
/// methods (<see cref="AppendAsync"/>, <see cref="AddMembersAsync"/>, <see cref="RemoveMemberAsync"/>: the embedded
/// write service's) use a monotonic clock in microseconds instead. A keyspace is written by one of the two, never both.</para>
/// <para><b>Dense seqs.</b> The check that a message continues its chat's head reads the head once per chat and call;
/// it holds because one process writes a chat at a time: the embedded write service, or the holder of the log's lease.</para>
/// </remarks>
public sealed class ScyllaChatStore : IChatStore, ISharedProjectionStore, IAsyncDisposable
{
    /// <summary>How much longer than its expiresAt a message's content stays in the store.</summary>
    public const int ExpiryMarginSeconds = 60;

    private const string MessageColumns = "seq, message_id, sender_id, sent_at, content_type, content, expires_at, client_message_id";

    private readonly CqlCluster _cluster;
    private readonly bool _ownsCluster;
    private readonly ScyllaStoreOptions _options;
    private readonly TimeProvider _time;
    private readonly Statements _q;
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private long _lastTimestamp;
    private int _disposed;

    private ScyllaChatStore(CqlCluster cluster, bool ownsCluster, ScyllaStoreOptions options, TimeProvider time, Statements statements)
    {
        _cluster = cluster;
        _ownsCluster = ownsCluster;
        _options = options;
        _time = time;
        _q = statements;
    }

    /// <summary>The CQL session this store uses.</summary>
    public CqlCluster Cluster => _cluster;

    /// <summary>Connects to the cluster, checks the schema version and prepares every statement.</summary>
    /// <exception cref="InvalidOperationException">The schema is missing or does not match (see <see cref="ScyllaSchema.VerifyAsync"/>).</exception>
    /// <exception cref="CqlException">No node could be reached.</exception>
    public static async Task<ScyllaChatStore> OpenAsync(ScyllaStoreOptions options, ILoggerFactory? loggerFactory = null, TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var cluster = await CqlCluster.ConnectAsync(ClusterOptions(options), loggerFactory, cancellationToken).ConfigureAwait(false);
        try
        {
            return await OpenAsync(cluster, ownsCluster: true, options, time, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await cluster.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Opens the store on a session the caller keeps (and disposes).</summary>
    public static async Task<ScyllaChatStore> OpenAsync(CqlCluster cluster, bool ownsCluster, ScyllaStoreOptions options, TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        ArgumentNullException.ThrowIfNull(options);
        await ScyllaSchema.VerifyAsync(cluster, options, cancellationToken).ConfigureAwait(false);
        var statements = await Statements.PrepareAsync(cluster, ScyllaSchema.CheckedKeyspace(options.Keyspace), cancellationToken).ConfigureAwait(false);
        return new ScyllaChatStore(cluster, ownsCluster, options, time ?? TimeProvider.System, statements);
    }

    /// <summary>The client settings for <paramref name="options"/>.</summary>
    public static CqlClusterOptions ClusterOptions(ScyllaStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        SslClientAuthenticationOptions? tls = null;
        if (options.Tls || !string.IsNullOrEmpty(options.TlsCaFile))
        {
            tls = new SslClientAuthenticationOptions();
            if (!string.IsNullOrEmpty(options.TlsCaFile))
            {
                var roots = new X509Certificate2Collection();
                roots.ImportFromPemFile(options.TlsCaFile);
                tls.CertificateChainPolicy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust };
                tls.CertificateChainPolicy.CustomTrustStore.AddRange(roots);
            }
        }

        return new CqlClusterOptions
        {
            ContactPoints = [.. options.ContactPoints.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)],
            Port = options.Port,
            Username = string.IsNullOrEmpty(options.Username) ? null : options.Username,
            Password = options.Password,
            LocalDatacenter = string.IsNullOrEmpty(options.LocalDatacenter) ? null : options.LocalDatacenter,
            Tls = tls,
            RequestTimeout = TimeSpan.FromMilliseconds(options.RequestTimeoutMs),
        };
    }

    /// <summary>Readiness: true while at least one node is reachable.</summary>
    public bool IsHealthy(out string? problem)
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            problem = "the store is closed";
            return false;
        }

        var hosts = _cluster.Hosts;
        if (hosts.Any(h => h.IsUp))
        {
            problem = null;
            return true;
        }

        problem = $"no Scylla node is reachable ({hosts.Count} known)";
        return false;
    }

    /// <inheritdoc />
    public async ValueTask<ulong> GetHeadAsync(string tenantId, string chatId, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        using var result = await ReadAsync(_q.SelectHead, [tenantId, chatId], cancellationToken).ConfigureAwait(false);
        return result.Rows is { Count: > 0 } rows && !rows.IsNull(0, 0) ? (ulong)rows.GetInt64(0, 0) : 0;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<ChatMessage>> ReadAfterAsync(string tenantId, string chatId, ulong afterSeq, int limit, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        if (limit == 0 || afterSeq == ulong.MaxValue)
        {
            return [];
        }

        var head = await GetHeadAsync(tenantId, chatId, cancellationToken).ConfigureAwait(false);
        return await ReadAfterAsync(tenantId, chatId, afterSeq, limit, head, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>The head is read first: messages are stored before the head that covers them, so every seq up to it can
    /// be read afterwards (with LOCAL_QUORUM on both sides).</remarks>
    public async ValueTask<(ulong Head, IReadOnlyList<ChatMessage> Page)> ReadCatchUpAsync(string tenantId, string chatId, ulong afterSeq, int limit, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        var head = await GetHeadAsync(tenantId, chatId, cancellationToken).ConfigureAwait(false);
        var page = limit == 0 || afterSeq == ulong.MaxValue ? [] : await ReadAfterAsync(tenantId, chatId, afterSeq, limit, head, cancellationToken).ConfigureAwait(false);
        return (head, page);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<ChatMessage>> ReadBeforeAsync(string tenantId, string chatId, ulong beforeSeq, int limit, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        if (limit == 0 || beforeSeq == 1)
        {
            return [];
        }

        var head = await GetHeadAsync(tenantId, chatId, cancellationToken).ConfigureAwait(false);
        var start = beforeSeq == 0 ? head : Math.Min(beforeSeq - 1, head);
        var result = new List<ChatMessage>(Math.Min(limit, 64));
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        for (var bucket = Bucket(start); start > 0 && bucket >= 0 && result.Count < limit; bucket--)
        {
            await ReadBucketAsync(_q.SelectBefore, tenantId, chatId, bucket, (long)start, limit, now, result, cancellationToken).ConfigureAwait(false);
        }

        return result;
    }

    /// <inheritdoc />
    public async ValueTask<IdempotencyRecord?> GetIdempotencyAsync(string tenantId, string senderId, string clientMessageId, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        using var result = await ReadAsync(_q.SelectIdempotency, [tenantId, senderId, clientMessageId], cancellationToken).ConfigureAwait(false);
        if (result.Rows is not { Count: > 0 } rows)
        {
            return null;
        }

        var digest = rows.GetBytes(0, 4);
        return new IdempotencyRecord(
            rows.GetString(0, 0),
            (ulong)rows.GetInt64(0, 1),
            rows.GetString(0, 2),
            rows.GetInt64(0, 3),
            digest.Length == 16 ? BinaryPrimitives.ReadUInt128BigEndian(digest) : null);
    }

    /// <inheritdoc />
    /// <remarks>Messages and their idempotency records first, then the heads (see the class remarks). A seq that does not
    /// continue its chat's head throws <see cref="InvalidOperationException"/> before anything is written.</remarks>
    public async ValueTask AppendAsync(IReadOnlyList<ChatMessage> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ThrowIfDisposed();
        if (messages.Count == 0)
        {
            return;
        }

        await _writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var heads = new Dictionary<(string, string), ulong>();
            foreach (var message in messages)
            {
                ArgumentNullException.ThrowIfNull(message);
                var chat = (message.TenantId, message.ChatId);
                if (!heads.TryGetValue(chat, out var head))
                {
                    head = await GetHeadAsync(message.TenantId, message.ChatId, cancellationToken).ConfigureAwait(false);
                }

                if (message.Seq != head + 1)
                {
                    throw NotDense(message, head);
                }

                heads[chat] = message.Seq;
            }

            var timestamp = NextTimestamp();
            var writes = new List<Task>(messages.Count * 2);
            foreach (var message in messages)
            {
                AddMessageWrites(writes, message, timestamp, cancellationToken);
            }

            await WhenAllAsync(writes).ConfigureAwait(false);
            foreach (var ((tenantId, chatId), head) in heads)
            {
                writes.Add(WriteAsync(_q.UpdateHead, [CqlValue.BigInt(timestamp), CqlValue.BigInt((long)head), tenantId, chatId], cancellationToken));
            }

            await WhenAllAsync(writes).ConfigureAwait(false);
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <inheritdoc />
    /// <remarks>In UTF-8 byte order of the user id (the clustering order).</remarks>
    public async ValueTask<IReadOnlyList<string>> GetMembersAsync(string tenantId, string chatId, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return await ReadStringsAsync(_q.SelectMembers, [tenantId, chatId], cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The chats <paramref name="userId"/> is a member of (from the reverse index), in UTF-8 byte order.</summary>
    public async ValueTask<IReadOnlyList<string>> GetChatsOfUserAsync(string tenantId, string userId, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return await ReadStringsAsync(_q.SelectChatsOfUser, [tenantId, userId], cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<bool> ChatExistsAsync(string tenantId, string chatId, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        using var result = await ReadAsync(_q.SelectCreatedAt, [tenantId, chatId], cancellationToken).ConfigureAwait(false);
        return result.Rows is { Count: > 0 } rows && !rows.IsNull(0, 0);
    }

    /// <inheritdoc />
    /// <remarks>Members already present keep their original joinedAt; the chat keeps its original createdAt.</remarks>
    public async ValueTask AddMembersAsync(string tenantId, string chatId, IReadOnlyCollection<string> userIds, long joinedAt, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(userIds);
        ThrowIfDisposed();
        await _writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var members = new HashSet<string>(await GetMembersAsync(tenantId, chatId, cancellationToken).ConfigureAwait(false), StringComparer.Ordinal);
            var timestamp = NextTimestamp();
            var writes = new List<Task>();
            foreach (var user in userIds)
            {
                if (members.Add(user))
                {
                    AddMemberWrites(writes, tenantId, chatId, user, joinedAt, timestamp, cancellationToken);
                }
            }

            await WhenAllAsync(writes).ConfigureAwait(false);
            if (!await ChatExistsAsync(tenantId, chatId, cancellationToken).ConfigureAwait(false))
            {
                // After the members: a chat that exists has its members (a reader never sees an empty new chat).
                await WriteAsync(_q.UpdateCreatedAt, [CqlValue.BigInt(timestamp), CqlValue.Timestamp(joinedAt), tenantId, chatId], cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask<bool> RemoveMemberAsync(string tenantId, string chatId, string userId, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        await _writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using (var found = await ReadAsync(_q.SelectMember, [tenantId, chatId, userId], cancellationToken).ConfigureAwait(false))
            {
                if (found.Rows is not { Count: > 0 })
                {
                    return false;
                }
            }

            var writes = new List<Task>(2);
            AddMemberDeletes(writes, tenantId, chatId, userId, NextTimestamp(), cancellationToken);
            await WhenAllAsync(writes).ConfigureAwait(false);
            return true;
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask<ulong> GetCheckpointAsync(string log, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(log);
        ThrowIfDisposed();
        using var result = await ReadAsync(_q.SelectCheckpoint, [log], cancellationToken).ConfigureAwait(false);
        return result.Rows is { Count: > 0 } rows && !rows.IsNull(0, 0) ? (ulong)rows.GetInt64(0, 0) : 0;
    }

    /// <inheritdoc />
    /// <remarks>
    /// Changes later in the list see the earlier ones (a member added then removed in one batch ends removed): the batch's
    /// net effect is computed first and written with the checkpoint as write timestamp, in the order of the class remarks.
    /// A hole throws before anything is written.
    /// </remarks>
    public async ValueTask<ProjectionResult> ApplyAsync(string log, ulong checkpoint, IReadOnlyList<ProjectionChange> changes, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(log);
        ArgumentNullException.ThrowIfNull(changes);
        ThrowIfDisposed();
        if (checkpoint is 0 or > long.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(checkpoint), checkpoint, "a log position is between 1 and 2^63 - 1");
        }

        await _writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var timestamp = (long)checkpoint;
            var heads = new Dictionary<(string, string), ulong>();
            var newChats = new Dictionary<(string, string), long>();
            var existing = new Dictionary<(string, string), bool>();
            var members = new Dictionary<(string, string), HashSet<string>>();
            var net = new Dictionary<(string Tenant, string Chat, string User), (bool Member, long At)>();
            var advanced = new HashSet<(string, string)>();
            var messages = new List<ChatMessage>();
            int stale = 0;
            foreach (var change in changes)
            {
                var chat = (change.TenantId, change.ChatId);
                switch (change.Kind)
                {
                    case ProjectionChangeKind.Message:
                        var message = change.Message ?? throw new ArgumentException("a Message change without a message", nameof(changes));
                        chat = (message.TenantId, message.ChatId);
                        if (!heads.TryGetValue(chat, out var head))
                        {
                            head = await GetHeadAsync(message.TenantId, message.ChatId, cancellationToken).ConfigureAwait(false);
                        }

                        if (message.Seq <= head)
                        {
                            stale++;
                            heads[chat] = head;
                            continue;
                        }

                        advanced.Add(chat);

                        if (message.Seq != head + 1)
                        {
                            throw NotDense(message, head);
                        }

                        heads[chat] = message.Seq;
                        messages.Add(message);
                        break;
                    case ProjectionChangeKind.MembersAdded:
                        if (!existing.TryGetValue(chat, out var exists))
                        {
                            exists = await ChatExistsAsync(change.TenantId, change.ChatId, cancellationToken).ConfigureAwait(false);
                            existing[chat] = exists;
                        }

                        if (!exists && !newChats.ContainsKey(chat))
                        {
                            newChats[chat] = change.At;
                        }

                        var current = await MembersOfAsync(members, chat, cancellationToken).ConfigureAwait(false);
                        foreach (var user in change.Users)
                        {
                            if (current.Add(user))
                            {
                                net[(change.TenantId, change.ChatId, user)] = (true, change.At);
                            }
                        }

                        break;
                    case ProjectionChangeKind.MembersRemoved:
                        var before = await MembersOfAsync(members, chat, cancellationToken).ConfigureAwait(false);
                        foreach (var user in change.Users)
                        {
                            if (before.Remove(user))
                            {
                                net[(change.TenantId, change.ChatId, user)] = (false, 0);
                            }
                        }

                        break;
                    default:
                        throw new ArgumentOutOfRangeException(nameof(changes), change.Kind, "unknown projection change");
                }
            }

            var writes = new List<Task>((messages.Count * 2) + (net.Count * 2) + heads.Count);
            foreach (var message in messages)
            {
                AddMessageWrites(writes, message, timestamp, cancellationToken);
            }

            await WhenAllAsync(writes).ConfigureAwait(false);
            foreach (var ((tenantId, chatId, user), (member, at)) in net)
            {
                if (member)
                {
                    AddMemberWrites(writes, tenantId, chatId, user, at, timestamp, cancellationToken);
                }
                else
                {
                    AddMemberDeletes(writes, tenantId, chatId, user, timestamp, cancellationToken);
                }
            }

            foreach (var chat in advanced)
            {
                writes.Add(WriteAsync(_q.UpdateHead, [CqlValue.BigInt(timestamp), CqlValue.BigInt((long)heads[chat]), chat.Item1, chat.Item2], cancellationToken));
            }

            await WhenAllAsync(writes).ConfigureAwait(false);
            foreach (var ((tenantId, chatId), createdAt) in newChats)
            {
                writes.Add(WriteAsync(_q.UpdateCreatedAt, [CqlValue.BigInt(timestamp), CqlValue.Timestamp(createdAt), tenantId, chatId], cancellationToken));
            }

            await WhenAllAsync(writes).ConfigureAwait(false);
            await WriteAsync(_q.UpdateCheckpoint, [CqlValue.BigInt(timestamp), CqlValue.BigInt(timestamp), log], cancellationToken).ConfigureAwait(false);
            return new ProjectionResult(messages.Count, stale);
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <inheritdoc />
    public TimeSpan LeaseDuration => TimeSpan.FromMilliseconds(_options.ProjectionLeaseMs);

    /// <inheritdoc />
    public async ValueTask<bool> TryHoldLeaseAsync(string log, string owner, TimeSpan duration, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(log);
        ArgumentException.ThrowIfNullOrEmpty(owner);
        ThrowIfDisposed();
        var ttl = CqlValue.Int((int)Math.Max(1, Math.Ceiling(duration.TotalSeconds)));
        using (var renew = await ExecuteAsync(_q.RenewLease, [ttl, owner, log, owner], default, cancellationToken).ConfigureAwait(false))
        {
            if (renew.Applied)
            {
                return true;
            }

            if (renew.Rows is { } rows && rows.IndexOf("owner") is var column and >= 0 && !rows.IsNull(0, column))
            {
                return false;
            }
        }

        using var take = await ExecuteAsync(_q.TakeLease, [log, owner, ttl], default, cancellationToken).ConfigureAwait(false);
        return take.Applied;
    }

    /// <inheritdoc />
    public async ValueTask ReleaseLeaseAsync(string log, string owner, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        using var _ = await ExecuteAsync(_q.ReleaseLease, [log, owner], default, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Closes the session when this store opened it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_ownsCluster)
        {
            await _cluster.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private long Bucket(ulong seq) => seq == 0 ? 0 : (long)((seq - 1) / (ulong)_options.BucketSize);

    private async ValueTask<List<ChatMessage>> ReadAfterAsync(string tenantId, string chatId, ulong afterSeq, int limit, ulong head, CancellationToken cancellationToken)
    {
        var result = new List<ChatMessage>(Math.Min(limit, 64));
        if (afterSeq >= head)
        {
            return result;
        }

        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var from = afterSeq + 1;
        for (long bucket = Bucket(from), last = Bucket(head); bucket <= last && result.Count < limit; bucket++)
        {
            await ReadBucketAsync(_q.SelectFrom, tenantId, chatId, bucket, (long)from, limit, now, result, cancellationToken, upTo: (long)head).ConfigureAwait(false);
        }

        return result;
    }

    /// <summary>Adds up to <paramref name="limit"/> − count live messages of one bucket, from <paramref name="bound"/>
    /// (inclusive) on in the statement's direction (forward: up to <paramref name="upTo"/>, inclusive). Expired messages
    /// do not count toward the limit, so a page that held some is followed by another from where it ended, until the
    /// limit is met or the bucket ends.</summary>
    /// <remarks>A forward read stops at the head it read first. Rows above the head belong to a projection batch still
    /// being written: its messages are written concurrently, so they can be visible with holes between them until the
    /// batch raises the head. Returned, they would make a reader that trusts a page to be dense up to its last seq skip
    /// the holes for good.</remarks>
    private async Task ReadBucketAsync(CqlPrepared statement, string tenantId, string chatId, long bucket, long bound, int limit, long now, List<ChatMessage> result, CancellationToken cancellationToken, long upTo = 0)
    {
        var ascending = ReferenceEquals(statement, _q.SelectFrom);
        while (result.Count < limit)
        {
            var want = limit - result.Count;
            var paging = ReadOnlyMemory<byte>.Empty;
            var read = 0;

            // One query per round, paged with its own values: a paging state continues exactly the query it came from.
            CqlValue[] values = ascending
                ? [tenantId, chatId, CqlValue.BigInt(bucket), CqlValue.BigInt(bound), CqlValue.BigInt(upTo), CqlValue.Int(want)]
                : [tenantId, chatId, CqlValue.BigInt(bucket), CqlValue.BigInt(bound), CqlValue.Int(want)];
            do
            {
                var options = new CqlStatementOptions { Idempotent = true, PageSize = want, PagingState = paging };
                using var page = await ExecuteAsync(statement, values, options, cancellationToken).ConfigureAwait(false);
                var rows = page.Rows ?? throw new CqlException("a SELECT answered without rows");
                for (var i = 0; i < rows.Count; i++)
                {
                    read++;
                    var message = ReadMessage(rows, i, tenantId, chatId);
                    bound = ascending ? (long)message.Seq + 1 : (long)message.Seq - 1;
                    if (!message.IsExpiredAt(now) && result.Count < limit)
                    {
                        result.Add(message);
                    }
                }

                paging = rows.HasMorePages ? rows.PagingState : ReadOnlyMemory<byte>.Empty;
            }
            while (!paging.IsEmpty);

            if (read < want)
            {
                return; // the bucket has nothing more in this direction
            }
        }
    }

    private static ChatMessage ReadMessage(CqlRows rows, int row, string tenantId, string chatId)
    {
        var content = rows.GetBytes(row, 5);
        return new ChatMessage(
            tenantId,
            chatId,
            (ulong)rows.GetInt64(row, 0),
            rows.GetString(row, 1),
            rows.GetString(row, 2),
            rows.GetInt64(row, 3),
            rows.GetString(row, 4),
            content.IsEmpty ? ReadOnlyMemory<byte>.Empty : content.ToArray(),
            rows.IsNull(row, 6) ? null : rows.GetInt64(row, 6),
            rows.GetString(row, 7));
    }

    private void AddMessageWrites(List<Task> writes, ChatMessage message, long timestamp, CancellationToken cancellationToken)
    {
        // A message that must disappear gets a TTL so the store drops its content by itself. Reads filter by expiresAt
        // to the millisecond; the TTL, counted in whole seconds on the node's clock, runs a margin longer so that no
        // clock difference makes a message vanish before its time.
        var ttl = 0;
        if (message.ExpiresAt is { } expiresAt)
        {
            var seconds = Math.Ceiling((expiresAt - _time.GetUtcNow().ToUnixTimeMilliseconds()) / 1000.0) + ExpiryMarginSeconds;
            ttl = (int)Math.Clamp(seconds, 1, int.MaxValue);
        }

        writes.Add(WriteAsync(_q.InsertMessage,
        [
            message.TenantId, message.ChatId, CqlValue.BigInt(Bucket(message.Seq)), CqlValue.BigInt((long)message.Seq), message.MessageId, message.SenderId,
            CqlValue.Timestamp(message.SentAt), message.ContentType, CqlValue.Blob(message.Content),
            message.ExpiresAt is { } e ? CqlValue.Timestamp(e) : CqlValue.Unset, message.ClientMessageId, CqlValue.Int(ttl), CqlValue.BigInt(timestamp),
        ], cancellationToken));
        var digest = new byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(digest, PayloadDigest.Of(message));
        writes.Add(WriteAsync(_q.InsertIdempotency,
        [
            message.TenantId, message.SenderId, message.ClientMessageId, message.ChatId, CqlValue.BigInt((long)message.Seq), message.MessageId,
            CqlValue.Timestamp(message.SentAt), CqlValue.Blob(digest), CqlValue.Int(_options.IdempotencyTtlSeconds), CqlValue.BigInt(timestamp),
        ], cancellationToken));
    }

    private void AddMemberWrites(List<Task> writes, string tenantId, string chatId, string userId, long joinedAt, long timestamp, CancellationToken cancellationToken)
    {
        writes.Add(WriteAsync(_q.InsertMember, [tenantId, chatId, userId, CqlValue.Timestamp(joinedAt), CqlValue.BigInt(timestamp)], cancellationToken));
        writes.Add(WriteAsync(_q.InsertChatOfUser, [tenantId, userId, chatId, CqlValue.Timestamp(joinedAt), CqlValue.BigInt(timestamp)], cancellationToken));
    }

    private void AddMemberDeletes(List<Task> writes, string tenantId, string chatId, string userId, long timestamp, CancellationToken cancellationToken)
    {
        writes.Add(WriteAsync(_q.DeleteMember, [CqlValue.BigInt(timestamp), tenantId, chatId, userId], cancellationToken));
        writes.Add(WriteAsync(_q.DeleteChatOfUser, [CqlValue.BigInt(timestamp), tenantId, userId, chatId], cancellationToken));
    }

    private async ValueTask<HashSet<string>> MembersOfAsync(Dictionary<(string, string), HashSet<string>> cache, (string Tenant, string Chat) chat, CancellationToken cancellationToken)
    {
        if (!cache.TryGetValue(chat, out var set))
        {
            set = new HashSet<string>(await GetMembersAsync(chat.Tenant, chat.Chat, cancellationToken).ConfigureAwait(false), StringComparer.Ordinal);
            cache[chat] = set;
        }

        return set;
    }

    /// <summary>Every write here is idempotent (a fixed write timestamp and fixed values), so the client may retry it on another node.</summary>
    private async Task WriteAsync(CqlPrepared statement, CqlValue[] values, CancellationToken cancellationToken)
    {
        using var _ = await ExecuteAsync(statement, values, new CqlStatementOptions { Idempotent = true }, cancellationToken).ConfigureAwait(false);
    }

    private Task<CqlResult> ReadAsync(CqlPrepared statement, CqlValue[] values, CancellationToken cancellationToken) =>
        ExecuteAsync(statement, values, new CqlStatementOptions { Idempotent = true }, cancellationToken);

    /// <summary>Every request of the store goes through here: a cluster that cannot answer becomes
    /// <see cref="StoreUnavailableException"/> (retry later); any other error (a bug: syntax, schema) stays what it is.</summary>
    private async Task<CqlResult> ExecuteAsync(CqlPrepared statement, CqlValue[] values, CqlStatementOptions options, CancellationToken cancellationToken)
    {
        try
        {
            return await _cluster.ExecuteAsync(statement, values, options, cancellationToken).ConfigureAwait(false);
        }
        catch (CqlException e) when (IsUnavailable(e))
        {
            throw new StoreUnavailableException($"the Scylla store did not answer: {e.Message}", e);
        }
    }

    private static bool IsUnavailable(CqlException e) => e switch
    {
        CqlNoHostAvailableException or CqlTimeoutException or CqlConnectionException => true,
        CqlServerException s => s.Code is CqlErrorCode.Unavailable or CqlErrorCode.Overloaded or CqlErrorCode.IsBootstrapping
            or CqlErrorCode.ReadTimeout or CqlErrorCode.WriteTimeout or CqlErrorCode.ReadFailure or CqlErrorCode.WriteFailure,
        _ => false,
    };

    private async Task<List<string>> ReadStringsAsync(CqlPrepared statement, CqlValue[] values, CancellationToken cancellationToken)
    {
        var list = new List<string>();
        var paging = ReadOnlyMemory<byte>.Empty;
        do
        {
            using var page = await ExecuteAsync(statement, values, new CqlStatementOptions { Idempotent = true, PagingState = paging }, cancellationToken).ConfigureAwait(false);
            var rows = page.Rows ?? throw new CqlException("a SELECT answered without rows");
            for (var i = 0; i < rows.Count; i++)
            {
                list.Add(rows.GetString(i, 0));
            }

            paging = rows.HasMorePages ? rows.PagingState : ReadOnlyMemory<byte>.Empty;
        }
        while (!paging.IsEmpty);
        return list;
    }

    /// <summary>Awaits every write and empties the list; the first failure is rethrown after all have finished, so no
    /// write of this step is still in flight when the next step starts.</summary>
    private static async Task WhenAllAsync(List<Task> writes)
    {
        try
        {
            await Task.WhenAll(writes).ConfigureAwait(false);
        }
        finally
        {
            writes.Clear();
        }
    }

    /// <summary>Microseconds since the epoch, strictly increasing within this process.</summary>
    private long NextTimestamp()
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds() * 1000;
        while (true)
        {
            var last = Volatile.Read(ref _lastTimestamp);
            var next = Math.Max(now, last + 1);
            if (Interlocked.CompareExchange(ref _lastTimestamp, next, last) == last)
            {
                return next;
            }
        }
    }

    private static InvalidOperationException NotDense(ChatMessage message, ulong head) =>
        new($"Message seq {message.Seq} of chat {message.TenantId}/{message.ChatId} does not continue the stored head {head}; nothing was written");

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    /// <summary>Every statement, prepared once when the store opens.</summary>
    private sealed class Statements
    {
        public required CqlPrepared SelectHead { get; init; }
        public required CqlPrepared SelectCreatedAt { get; init; }
        public required CqlPrepared UpdateHead { get; init; }
        public required CqlPrepared UpdateCreatedAt { get; init; }
        public required CqlPrepared SelectFrom { get; init; }
        public required CqlPrepared SelectBefore { get; init; }
        public required CqlPrepared InsertMessage { get; init; }
        public required CqlPrepared SelectIdempotency { get; init; }
        public required CqlPrepared InsertIdempotency { get; init; }
        public required CqlPrepared SelectMembers { get; init; }
        public required CqlPrepared SelectMember { get; init; }
        public required CqlPrepared SelectChatsOfUser { get; init; }
        public required CqlPrepared InsertMember { get; init; }
        public required CqlPrepared InsertChatOfUser { get; init; }
        public required CqlPrepared DeleteMember { get; init; }
        public required CqlPrepared DeleteChatOfUser { get; init; }
        public required CqlPrepared SelectCheckpoint { get; init; }
        public required CqlPrepared UpdateCheckpoint { get; init; }
        public required CqlPrepared RenewLease { get; init; }
        public required CqlPrepared TakeLease { get; init; }
        public required CqlPrepared ReleaseLease { get; init; }

        public static async Task<Statements> PrepareAsync(CqlCluster cluster, string ks, CancellationToken cancellationToken)
        {
            Task<CqlPrepared> P(string cql) => cluster.PrepareAsync(cql, cancellationToken);
            var chat = "tenant_id = ? AND chat_id = ?";
            return new Statements
            {
                SelectHead = await P($"SELECT head FROM {ks}.chats WHERE {chat}").ConfigureAwait(false),
                SelectCreatedAt = await P($"SELECT created_at FROM {ks}.chats WHERE {chat}").ConfigureAwait(false),
                UpdateHead = await P($"UPDATE {ks}.chats USING TIMESTAMP ? SET head = ? WHERE {chat}").ConfigureAwait(false),
                UpdateCreatedAt = await P($"UPDATE {ks}.chats USING TIMESTAMP ? SET created_at = ? WHERE {chat}").ConfigureAwait(false),
                SelectFrom = await P($"SELECT {MessageColumns} FROM {ks}.messages WHERE {chat} AND bucket = ? AND seq >= ? AND seq <= ? LIMIT ?").ConfigureAwait(false),
                SelectBefore = await P($"SELECT {MessageColumns} FROM {ks}.messages WHERE {chat} AND bucket = ? AND seq <= ? ORDER BY seq DESC LIMIT ?").ConfigureAwait(false),
                InsertMessage = await P($"INSERT INTO {ks}.messages (tenant_id, chat_id, bucket, {MessageColumns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?").ConfigureAwait(false),
                SelectIdempotency = await P($"SELECT chat_id, seq, message_id, sent_at, digest FROM {ks}.idempotency WHERE tenant_id = ? AND sender_id = ? AND client_message_id = ?").ConfigureAwait(false),
                InsertIdempotency = await P($"INSERT INTO {ks}.idempotency (tenant_id, sender_id, client_message_id, chat_id, seq, message_id, sent_at, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?").ConfigureAwait(false),
                SelectMembers = await P($"SELECT user_id FROM {ks}.members WHERE {chat}").ConfigureAwait(false),
                SelectMember = await P($"SELECT user_id FROM {ks}.members WHERE {chat} AND user_id = ?").ConfigureAwait(false),
                SelectChatsOfUser = await P($"SELECT chat_id FROM {ks}.chats_by_user WHERE tenant_id = ? AND user_id = ?").ConfigureAwait(false),
                InsertMember = await P($"INSERT INTO {ks}.members (tenant_id, chat_id, user_id, joined_at) VALUES (?, ?, ?, ?) USING TIMESTAMP ?").ConfigureAwait(false),
                InsertChatOfUser = await P($"INSERT INTO {ks}.chats_by_user (tenant_id, user_id, chat_id, joined_at) VALUES (?, ?, ?, ?) USING TIMESTAMP ?").ConfigureAwait(false),
                DeleteMember = await P($"DELETE FROM {ks}.members USING TIMESTAMP ? WHERE {chat} AND user_id = ?").ConfigureAwait(false),
                DeleteChatOfUser = await P($"DELETE FROM {ks}.chats_by_user USING TIMESTAMP ? WHERE tenant_id = ? AND user_id = ? AND chat_id = ?").ConfigureAwait(false),
                SelectCheckpoint = await P($"SELECT position FROM {ks}.projection_checkpoints WHERE log = ?").ConfigureAwait(false),
                UpdateCheckpoint = await P($"UPDATE {ks}.projection_checkpoints USING TIMESTAMP ? SET position = ? WHERE log = ?").ConfigureAwait(false),
                RenewLease = await P($"UPDATE {ks}.projection_leases USING TTL ? SET owner = ? WHERE log = ? IF owner = ?").ConfigureAwait(false),
                TakeLease = await P($"INSERT INTO {ks}.projection_leases (log, owner) VALUES (?, ?) IF NOT EXISTS USING TTL ?").ConfigureAwait(false),
                ReleaseLease = await P($"DELETE FROM {ks}.projection_leases WHERE log = ? IF owner = ?").ConfigureAwait(false),
            };
        }
    }
}
