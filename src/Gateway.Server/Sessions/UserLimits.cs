using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Gateway.Server.Connections;

namespace Gateway.Server.Sessions;

/// <summary>The per-user rate limits, one token bucket each.</summary>
internal enum RateKind
{
    /// <summary>Send frames.</summary>
    Send,

    /// <summary>Subscribe frames.</summary>
    Subscribe,

    /// <summary>History frames.</summary>
    History,

    /// <summary>Typing frames.</summary>
    Typing,
}

/// <summary>
/// Per-user rate limits shared by all of a user's connections on this server: one token bucket per <see cref="RateKind"/>
/// and (tenant, user), tracked from the user's first session to the last.
/// </summary>
/// <remarks>
/// The policies (rate and burst of each kind) are the same for every user and live here once; a user holds only the
/// buckets' states, four <see langword="long"/>s inline in its <see cref="User"/> entry (see <see cref="RateLimit"/>).
/// One 56-byte object per user, where four <see cref="TokenBucket"/>s, a record holding them and an entry took 240.
/// </remarks>
internal sealed class UserLimits
{
    private readonly ConcurrentDictionary<(string Tenant, string User), User> _users = new();
    private readonly RateLimit[] _policies;
    private readonly TimeProvider _time;

    public UserLimits(GatewayOptions options, TimeProvider time)
    {
        // Indexed by RateKind.
        _policies =
        [
            new RateLimit(options.SendsPerSecond, options.SendBurst),
            new RateLimit(options.SubscribesPerSecond, options.SubscribeBurst),
            new RateLimit(options.HistoryPerSecond, options.HistoryBurst),
            new RateLimit(options.TypingPerSecond, options.TypingBurst),
        ];
        _time = time;
    }

    /// <summary>Users currently tracked (for tests and diagnostics).</summary>
    internal int Count => _users.Count;

    /// <summary>Takes a reference on the user's limits; release it with <see cref="Release"/>.</summary>
    public User Acquire(string tenantId, string userId)
    {
        var key = (tenantId, userId);
        while (true)
        {
            var entry = _users.GetOrAdd(key, static _ => new User());
            lock (entry)
            {
                if (entry.References >= 0)
                {
                    entry.References++;
                    return entry;
                }
            }

            // lost a race with the last release: retry with a fresh entry
        }
    }

    public void Release(string tenantId, string userId)
    {
        var key = (tenantId, userId);
        if (!_users.TryGetValue(key, out var entry))
        {
            return;
        }

        lock (entry)
        {
            if (--entry.References == 0)
            {
                entry.References = -1; // dead: Acquire will not reuse it
                _users.TryRemove(new KeyValuePair<(string, string), User>(key, entry));
            }
        }
    }

    /// <summary>Takes a token of <paramref name="kind"/> from <paramref name="user"/>'s bucket, now.</summary>
    /// <param name="user">What <see cref="Acquire"/> returned.</param>
    /// <param name="kind">Which bucket.</param>
    /// <param name="retryAfter">When refused: how long until a token is available; else zero.</param>
    public bool TryTake(User user, RateKind kind, out TimeSpan retryAfter) =>
        _policies[(int)kind].TryTake(ref user.State((int)kind), TokenBucket.GetTicks(_time), out retryAfter);

    /// <summary>One user's entry: its reference count and the state of each of its buckets.</summary>
    internal sealed class User
    {
        private BucketStates _states;

        /// <summary>Sessions holding this entry; -1 once it has left the table. Guarded by lock (this).</summary>
        public int References { get; set; }

        /// <summary>The state of bucket <paramref name="kind"/> (see <see cref="RateLimit.TryTake"/>); 0 = full.</summary>
        internal ref long State(int kind) => ref _states[kind];

        /// <summary>One state per <see cref="RateKind"/>, inline in the entry.</summary>
        [InlineArray(4)]
        private struct BucketStates
        {
            private long _first;
        }
    }
}
