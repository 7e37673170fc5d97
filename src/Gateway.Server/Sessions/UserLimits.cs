using System.Collections.Concurrent;
using Gateway.Server.Connections;

namespace Gateway.Server.Sessions;

/// <summary>
/// Per-user rate limits shared by all of a user's connections on this server: one set of token buckets per
/// (tenant, user), created with the user's first session and dropped with the last.
/// </summary>
internal sealed class UserLimits
{
    private readonly ConcurrentDictionary<(string Tenant, string User), Entry> _users = new();
    private readonly GatewayOptions _options;
    private readonly TimeProvider _time;

    public UserLimits(GatewayOptions options, TimeProvider time)
    {
        _options = options;
        _time = time;
    }

    /// <summary>Takes a reference on the user's buckets; release it with <see cref="Release"/>.</summary>
    public Buckets Acquire(string tenantId, string userId)
    {
        var key = (tenantId, userId);
        while (true)
        {
            var entry = _users.GetOrAdd(key, _ => new Entry(CreateBuckets()));
            lock (entry)
            {
                if (entry.References >= 0)
                {
                    entry.References++;
                    return entry.Buckets;
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
                _users.TryRemove(new KeyValuePair<(string, string), Entry>(key, entry));
            }
        }
    }

    /// <summary>Now, in the buckets' units (<see cref="TokenBucket.GetTicks"/>).</summary>
    public long Now() => TokenBucket.GetTicks(_time);

    private Buckets CreateBuckets()
    {
        var o = _options;
        return new Buckets(
            new TokenBucket(o.SendsPerSecond, o.SendBurst),
            new TokenBucket(o.SubscribesPerSecond, o.SubscribeBurst),
            new TokenBucket(o.HistoryPerSecond, o.HistoryBurst),
            new TokenBucket(o.TypingPerSecond, o.TypingBurst));
    }

    internal sealed record Buckets(TokenBucket Sends, TokenBucket Subscribes, TokenBucket History, TokenBucket Typing);

    private sealed class Entry(Buckets buckets)
    {
        public Buckets Buckets { get; } = buckets;

        public int References { get; set; }
    }
}
