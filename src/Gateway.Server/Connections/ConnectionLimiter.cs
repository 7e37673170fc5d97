using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Runtime.CompilerServices;

namespace Gateway.Server.Connections;

/// <summary>The outcome of <see cref="ConnectionLimiter.TryAdmitAddress"/>.</summary>
internal enum AddressAdmission
{
    /// <summary>Admitted; a connection slot of the address is held until <see cref="ConnectionLimiter.ReleaseAddress"/>.</summary>
    Admitted,

    /// <summary>The address's handshake rate is exceeded (HTTP 429 with Retry-After).</summary>
    RateLimited,

    /// <summary>The address has <see cref="GatewayOptions.MaxConnectionsPerIp"/> connections open (HTTP 429).</summary>
    TooManyConnections,
}

/// <summary>
/// Per-source-address and per-user connection accounting of one server: concurrent connection caps and the handshake
/// rate limit. Thread-safe; work is once per connection, never per frame.
/// </summary>
/// <remarks>
/// <para><b>Bounded tables.</b> An address is tracked while it has a connection open or its handshake bucket is not full
/// (it remembers recent attempts). When neither holds, the entry says nothing a fresh one would not, so it is removed:
/// at once when its last connection ends with a full bucket, otherwise by a sweep every <see cref="SweepInterval"/>.
/// The table therefore holds at most the addresses with open connections plus those that attempted a handshake in the
/// last burst / rate seconds (2.5 s with the defaults, 50 / 20) plus one sweep interval. A user is tracked the same
/// way: while it has a connection open or one of its rate-limit buckets is not full. Its entry (<see cref="User"/>)
/// holds the state of the user's per-kind rate limits (<c>UserLimits</c>), so a user costs one table entry, not one
/// here and another for its buckets. Keeping a user with empty buckets past its last connection is what makes the
/// limits hold for HTTP sends (<see cref="TryTakeWithoutConnection"/>, one request at a time, no connection) and for a
/// client that reconnects to refill its buckets.</para>
/// <para><b>Removal without races.</b> Each entry is changed under its own lock and carries a <c>Removed</c> mark set
/// under that lock just before it leaves the table; a thread that fetched an entry that is then removed sees the mark
/// and fetches again (creating a fresh entry), so no count is ever applied to an entry outside the table.</para>
/// </remarks>
internal sealed class ConnectionLimiter : IDisposable
{
    /// <summary>How often idle addresses are swept out of the table.</summary>
    internal static readonly TimeSpan SweepInterval = TimeSpan.FromSeconds(10);

    private readonly ConcurrentDictionary<IPAddress, AddressEntry> _addresses = new();
    private readonly ConcurrentDictionary<(string Tenant, string User), User> _users = new();
    private readonly Func<IPAddress, AddressEntry> _newAddress;
    private readonly int _maxPerAddress;
    private readonly int _maxPerUser;
    private readonly double _handshakeRate;
    private readonly int _handshakeBurst;
    private readonly TimeProvider _time;
    private readonly ITimer _sweeper;

    public ConnectionLimiter(GatewayOptions options, TimeProvider time)
    {
        _maxPerAddress = options.MaxConnectionsPerIp;
        _maxPerUser = options.MaxConnectionsPerUser;
        _handshakeRate = options.HandshakesPerSecondPerIp;
        _handshakeBurst = options.HandshakeBurstPerIp;
        _time = time;
        _newAddress = _handshakeRate > 0
            ? _ => new AddressEntry(new TokenBucket(_handshakeRate, _handshakeBurst))
            : static _ => new AddressEntry(null);
        _sweeper = time.CreateTimer(static s => ((ConnectionLimiter)s!).Sweep(), this, SweepInterval, SweepInterval);
    }

    /// <summary>Addresses currently tracked (for tests and diagnostics).</summary>
    internal int TrackedAddresses => _addresses.Count;

    /// <summary>Users currently tracked (for tests and diagnostics).</summary>
    internal int TrackedUsers => _users.Count;

    /// <summary>IPv4-mapped IPv6 (what a dual-stack listener reports for IPv4 peers) counts as the IPv4 address.</summary>
    internal static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    /// <summary>
    /// Called when a connection arrives, before its upgrade request is read: takes a handshake token, then a connection
    /// slot. On <see cref="AddressAdmission.Admitted"/> the caller must call <see cref="ReleaseAddress"/> exactly once when
    /// the connection ends.
    /// </summary>
    /// <param name="address">The peer's address (normalized by the caller with <see cref="Normalize"/>).</param>
    /// <param name="retryAfter">When rate limited: how long until the next attempt may succeed.</param>
    public AddressAdmission TryAdmitAddress(IPAddress address, out TimeSpan retryAfter)
    {
        long now = TokenBucket.GetTicks(_time);
        while (true)
        {
            var entry = _addresses.GetOrAdd(address, _newAddress);
            lock (entry)
            {
                if (entry.Removed)
                {
                    continue;
                }

                // Every attempt costs a token, also one refused for the connection cap: the bucket bounds the work a
                // source can make us do, whatever the answer.
                if (entry.Handshakes is { } bucket && !bucket.TryTake(now, out retryAfter))
                {
                    return AddressAdmission.RateLimited;
                }

                retryAfter = TimeSpan.Zero;
                if (_maxPerAddress > 0 && entry.Connections >= _maxPerAddress)
                {
                    return AddressAdmission.TooManyConnections;
                }

                entry.Connections++;
                return AddressAdmission.Admitted;
            }
        }
    }

    /// <summary>Gives back the slot taken by an admitted connection.</summary>
    public void ReleaseAddress(IPAddress address)
    {
        if (!_addresses.TryGetValue(address, out var entry))
        {
            return; // not admitted: nothing held (an entry with a held slot is never removed)
        }

        lock (entry)
        {
            if (entry.Connections > 0)
            {
                entry.Connections--;
            }

            TryRemoveIdle(address, entry, TokenBucket.GetTicks(_time));
        }
    }

    /// <summary>Takes one of the user's connection slots; false when the user has <see cref="GatewayOptions.MaxConnectionsPerUser"/>
    /// open. On true the caller must call <see cref="ReleaseUser"/> exactly once when the connection ends.</summary>
    /// <param name="tenantId">The user's tenant.</param>
    /// <param name="userId">The user.</param>
    /// <param name="user">On true: the user's entry, shared by all its connections while one is open (rate-limit state).</param>
    public bool TryAdmitUser(string tenantId, string userId, [NotNullWhen(true)] out User? user)
    {
        var key = (tenantId, userId);
        while (true)
        {
            var entry = _users.GetOrAdd(key, static _ => new User());
            lock (entry)
            {
                if (entry.Removed)
                {
                    continue;
                }

                if (_maxPerUser > 0 && entry.Connections >= _maxPerUser)
                {
                    user = null;
                    return false;
                }

                entry.Connections++;
                user = entry;
                return true;
            }
        }
    }

    /// <summary>Gives back a slot taken by <see cref="TryAdmitUser"/>.</summary>
    public void ReleaseUser(string tenantId, string userId)
    {
        var key = (tenantId, userId);
        if (!_users.TryGetValue(key, out var entry))
        {
            return;
        }

        lock (entry)
        {
            entry.Connections--;
            TryRemoveIdle(key, entry, TokenBucket.GetTicks(_time));
        }
    }

    /// <summary>
    /// Takes a token from <paramref name="kind"/> of a user who need not have a connection open (an HTTP request): the
    /// same buckets the user's connections use. The entry stays in the table until its buckets are full again.
    /// </summary>
    /// <param name="tenantId">The user's tenant.</param>
    /// <param name="userId">The user.</param>
    /// <param name="limits">The policies.</param>
    /// <param name="kind">Which bucket.</param>
    /// <param name="retryAfter">When refused: how long until a token is available; else zero.</param>
    public bool TryTakeWithoutConnection(string tenantId, string userId, Sessions.UserLimits limits, Sessions.RateKind kind, out TimeSpan retryAfter)
    {
        ArgumentNullException.ThrowIfNull(limits);
        var key = (tenantId, userId);
        while (true)
        {
            var entry = _users.GetOrAdd(key, static _ => new User());

            // Under the entry's lock, so a sweep cannot remove it between the lookup and the take (it would then be a
            // take on an entry outside the table, forgotten at once).
            lock (entry)
            {
                if (entry.Removed)
                {
                    continue;
                }

                return limits.TryTake(entry, kind, out retryAfter);
            }
        }
    }

    /// <summary>Removes every address and user with no connection and full buckets.</summary>
    internal void Sweep() => Sweep(TokenBucket.GetTicks(_time));

    /// <inheritdoc cref="Sweep()"/>
    internal void Sweep(long nowTicks)
    {
        foreach (var (address, entry) in _addresses)
        {
            lock (entry)
            {
                TryRemoveIdle(address, entry, nowTicks);
            }
        }

        foreach (var (key, entry) in _users)
        {
            lock (entry)
            {
                TryRemoveIdle(key, entry, nowTicks);
            }
        }
    }

    public void Dispose() => _sweeper.Dispose();

    /// <summary>Call under the entry's lock.</summary>
    private void TryRemoveIdle(IPAddress address, AddressEntry entry, long nowTicks)
    {
        if (!entry.Removed && entry.Connections == 0 && (entry.Handshakes is null || entry.Handshakes.IsFull(nowTicks)))
        {
            Remove(_addresses, address, entry);
        }
    }

    /// <summary>Call under the entry's lock.</summary>
    private void TryRemoveIdle((string Tenant, string User) key, User entry, long nowTicks)
    {
        if (!entry.Removed && entry.Connections <= 0 && entry.RatesFull(nowTicks))
        {
            Remove(_users, key, entry);
        }
    }

    /// <summary>Call under the entry's lock: marks it, then removes exactly this entry (not a successor).</summary>
    private static void Remove<TKey, TEntry>(ConcurrentDictionary<TKey, TEntry> table, TKey key, TEntry entry)
        where TKey : notnull
        where TEntry : Entry
    {
        entry.Removed = true;
        table.TryRemove(new KeyValuePair<TKey, TEntry>(key, entry));
    }

    /// <summary>A table entry: its count and its removal mark, both guarded by lock (entry).</summary>
    internal abstract class Entry
    {
        public int Connections;
        public bool Removed;
    }

    private sealed class AddressEntry(TokenBucket? handshakes) : Entry
    {
        public TokenBucket? Handshakes { get; } = handshakes;
    }

    /// <summary>
    /// A user with connections open on this server: its connection count and the state of its rate-limit buckets, one
    /// <see langword="long"/> per kind inline (see <see cref="RateLimit.TryTake"/>; 0 = full). Once the last connection
    /// has ended and every bucket is full again the entry leaves the table (at once, or at the next sweep); a later
    /// connection then starts from a fresh one, which behaves the same.
    /// </summary>
    internal sealed class User : Entry
    {
        /// <summary>How many rate-limit states a user has (one per <c>RateKind</c>).</summary>
        internal const int RateKinds = 4;

        private RateStates _rates;

        /// <summary>The state of rate-limit bucket <paramref name="kind"/>, for <see cref="RateLimit.TryTake"/>.</summary>
        internal ref long RateState(int kind) => ref _rates[kind];

        /// <summary>True when no bucket remembers a take at <paramref name="nowTicks"/> (each state is at or before now).</summary>
        internal bool RatesFull(long nowTicks)
        {
            for (var i = 0; i < RateKinds; i++)
            {
                if (Volatile.Read(ref _rates[i]) > nowTicks)
                {
                    return false;
                }
            }

            return true;
        }

        [InlineArray(RateKinds)]
        private struct RateStates
        {
            private long _first;
        }
    }
}
