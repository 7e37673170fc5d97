using System.Net;

namespace Gateway.Cql.TestPeer;

/// <summary>What system.local and system.peers say about one node.</summary>
internal sealed record NodeInfo(IPAddress Ip, Guid HostId, string DataCenter, string Rack, IReadOnlyList<long> Tokens);

/// <summary>The data set all nodes share (as if every node were a replica of everything), with its schema and clock.</summary>
internal sealed class Database
{
    private long _lastMicros;

    /// <summary>One lock for schema and data: statements (LWT included) are atomic on the peer, which is all a test needs.</summary>
    public Lock Sync { get; } = new();

    public Dictionary<string, KeyspaceDef> Keyspaces { get; } = new(StringComparer.Ordinal);

    public Guid SchemaVersion { get; set; } = Guid.NewGuid();

    public string ClusterName { get; init; } = "Test Cluster";

    public int BatchWarnThreshold { get; init; } = 5;

    /// <summary>Node clock in µs since the epoch, strictly increasing so that two writes never tie by accident.</summary>
    public long NowMicros()
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000 + (DateTime.UtcNow.Ticks / 10 % 1000);
        while (true)
        {
            var last = Interlocked.Read(ref _lastMicros);
            var next = Math.Max(now, last + 1);
            if (Interlocked.CompareExchange(ref _lastMicros, next, last) == last)
            {
                return next;
            }
        }
    }

    public static long NowMs => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
}

/// <summary>Per-request inputs of an execution (connection keyspace, query parameters, the asking node's view).</summary>
internal sealed class ExecContext
{
    public string? Keyspace { get; set; }

    public long? DefaultTimestamp { get; set; }

    public int PageSize { get; set; } = -1;

    public byte[]? PagingState { get; set; }

    public ushort Consistency { get; set; } = 1;

    public required NodeInfo Local { get; init; }

    public required IReadOnlyList<NodeInfo> Peers { get; init; }

    /// <summary>Set by the engine: the token of the single partition a statement touched, when there is one.</summary>
    public long? Token { get; set; }

    public List<string> Warnings { get; } = [];
}
