using System.Globalization;
using System.Net;

namespace Gateway.Cql.Cluster;

/// <summary>A node as the cluster tracks it: where it is, what it owns, its pool, and its reconnection state.</summary>
internal sealed class CqlHostState(string address, IPEndPoint endPoint)
{
    private readonly Lock _lock = new();
    private CqlConnection[] _connections = [];

    public string Address { get; } = address;

    public IPEndPoint EndPoint { get; } = endPoint;

    public string? Datacenter { get; set; }

    public string? Rack { get; set; }

    public Guid? HostId { get; set; }

    public long[] Tokens { get; set; } = [];

    public volatile bool IsUp = true;

    /// <summary>Scylla sharding (SUPPORTED of its first connection); 0 shards: not sharded.</summary>
    public int ShardCount { get; private set; }

    public int IgnoreMsb { get; private set; }

    public int ShardAwarePort { get; private set; }

    /// <summary>Whether a reconnection loop runs for this node now (one at a time).</summary>
    public int Reconnecting;

    /// <summary>Cuts a reconnection loop's wait short (an UP event says the node is back: no reason to sit out the backoff).</summary>
    public SemaphoreSlim Wake { get; } = new(0, 1);

    public bool Removed { get; set; }

    public CqlConnection[] Connections => Volatile.Read(ref _connections);

    public CqlHost ToPublic() => new(Address, Datacenter, Rack, IsUp, Tokens.Length, ShardCount);

    public void LearnSharding(CqlConnection connection, bool tls)
    {
        var s = connection.Supported;
        if (Int(s, "SCYLLA_NR_SHARDS") is { } shards and > 0)
        {
            ShardCount = shards;
            IgnoreMsb = Int(s, "SCYLLA_SHARDING_IGNORE_MSB") ?? 0;

            // A TLS client must use the TLS flavour of the shard-aware port; without one it falls back to plain connects.
            ShardAwarePort = Int(s, tls ? "SCYLLA_SHARD_AWARE_PORT_SSL" : "SCYLLA_SHARD_AWARE_PORT") ?? 0;
        }
    }

    public void Add(CqlConnection connection)
    {
        lock (_lock)
        {
            _connections = [.. _connections, connection];
        }
    }

    /// <summary>Removes a closed connection; true when none is left.</summary>
    public bool Remove(CqlConnection connection)
    {
        lock (_lock)
        {
            _connections = Array.FindAll(_connections, c => c != connection);
            return _connections.Length == 0;
        }
    }

    public CqlConnection[] TakeAll()
    {
        lock (_lock)
        {
            var all = _connections;
            _connections = [];
            return all;
        }
    }

    /// <summary>The connection to use: on a sharded node with a token, the owning shard's least busy one; otherwise
    /// the least busy of all.</summary>
    public CqlConnection? Pick(long? token)
    {
        var all = Connections;
        CqlConnection? best = null;
        if (token is { } t && ShardCount > 0)
        {
            var shard = Protocol.ScyllaSharding.ShardOf(t, ShardCount, IgnoreMsb);
            foreach (var c in all)
            {
                if (c.Shard == shard && !c.IsClosed && (best is null || c.InFlight < best.InFlight))
                {
                    best = c;
                }
            }

            if (best is not null)
            {
                return best;
            }
        }

        foreach (var c in all)
        {
            if (!c.IsClosed && (best is null || c.InFlight < best.InFlight))
            {
                best = c;
            }
        }

        return best;
    }

    private static int? Int(IReadOnlyDictionary<string, IReadOnlyList<string>> map, string key) =>
        map.TryGetValue(key, out var values) && values.Count > 0 && int.TryParse(values[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : null;
}

/// <summary>The token ring: sorted tokens with their owners, and per position the replica walk precomputed.</summary>
internal sealed class CqlTokenRing
{
    /// <summary>How many distinct nodes the replica walk collects (a replication factor of 3 is the norm).</summary>
    private const int ReplicaWalk = 3;

    private readonly long[] _tokens;
    private readonly CqlHostState[][] _replicas;

    public static readonly CqlTokenRing Empty = new([], []);

    private CqlTokenRing(long[] tokens, CqlHostState[][] replicas)
    {
        _tokens = tokens;
        _replicas = replicas;
    }

    public bool IsEmpty => _tokens.Length == 0;

    public static CqlTokenRing Build(IEnumerable<CqlHostState> hosts, string? localDatacenter)
    {
        var entries = new List<(long Token, CqlHostState Host)>();
        foreach (var h in hosts)
        {
            foreach (var t in h.Tokens)
            {
                entries.Add((t, h));
            }
        }

        if (entries.Count == 0)
        {
            return Empty;
        }

        entries.Sort((a, b) => a.Token.CompareTo(b.Token));
        var tokens = new long[entries.Count];
        var replicas = new CqlHostState[entries.Count][];
        var distinct = entries.Select(e => e.Host).Distinct().Count();
        var want = Math.Min(ReplicaWalk, distinct);
        for (var i = 0; i < entries.Count; i++)
        {
            tokens[i] = entries[i].Token;
            var walk = new List<CqlHostState>(want);
            for (var j = 0; j < entries.Count && walk.Count < want; j++)
            {
                var h = entries[(i + j) % entries.Count].Host;
                if (!walk.Contains(h))
                {
                    walk.Add(h);
                }
            }

            // Local replicas first; the walk order is kept within each group.
            replicas[i] = [.. walk.Where(h => localDatacenter is null || h.Datacenter == localDatacenter), .. walk.Where(h => localDatacenter is not null && h.Datacenter != localDatacenter)];
        }

        return new CqlTokenRing(tokens, replicas);
    }

    /// <summary>The replicas of <paramref name="token"/>: the owner is the first node whose token is &gt;= it, wrapping.</summary>
    public CqlHostState[] Replicas(long token)
    {
        if (_tokens.Length == 0)
        {
            return [];
        }

        var i = Array.BinarySearch(_tokens, token);
        if (i < 0)
        {
            i = ~i;
        }

        return _replicas[i == _tokens.Length ? 0 : i];
    }
}
