using Microsoft.Extensions.Logging;

namespace Gateway.Cql;

/// <summary>
/// A session with a cluster: connection pools per node, prepared statements, routing and retries. Thread-safe; one
/// instance per cluster for the life of the process.
/// </summary>
public sealed partial class CqlCluster : IAsyncDisposable
{
    /// <summary>Connects to the first reachable contact point, discovers the ring and opens the pools.</summary>
    /// <exception cref="CqlNoHostAvailableException">No contact point answered.</exception>
    public static Task<CqlCluster> ConnectAsync(CqlClusterOptions options, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default) =>
        throw new NotImplementedException();

    /// <summary>The nodes known now, up or down.</summary>
    public IReadOnlyList<CqlHost> Hosts => throw new NotImplementedException();

    /// <summary>Raised for every topology, status and schema event a node pushes (after the client applied it).</summary>
    public event Action<CqlClusterEvent>? Event;

    /// <summary>Prepares a statement (on the node that routes it and, lazily, on others: an Unprepared answer prepares
    /// it there and retries once).</summary>
    public Task<CqlPrepared> PrepareAsync(string query, CancellationToken cancellationToken = default) =>
        throw new NotImplementedException();

    /// <summary>Runs a plain statement (QUERY) with optional positional values.</summary>
    public Task<CqlResult> QueryAsync(string query, CqlValue[]? values = null, CqlStatementOptions options = default, CancellationToken cancellationToken = default) =>
        throw new NotImplementedException();

    /// <summary>Runs a prepared statement (EXECUTE) with its values in marker order, routed by its partition key.</summary>
    public Task<CqlResult> ExecuteAsync(CqlPrepared prepared, CqlValue[] values, CqlStatementOptions options = default, CancellationToken cancellationToken = default) =>
        throw new NotImplementedException();

    /// <summary>Runs a BATCH, routed by the partition key of its first prepared statement.</summary>
    public Task<CqlResult> BatchAsync(CqlBatch batch, CqlStatementOptions options = default, CancellationToken cancellationToken = default) =>
        throw new NotImplementedException();

    /// <summary>Closes every connection; requests in flight fail with <see cref="ObjectDisposedException"/>.</summary>
    public ValueTask DisposeAsync() => throw new NotImplementedException();

    internal void OnEvent(CqlClusterEvent e) => Event?.Invoke(e);
}

/// <summary>A node of the ring as the client sees it.</summary>
/// <param name="Address">host:port of its native transport.</param>
/// <param name="Datacenter">Its data center.</param>
/// <param name="Rack">Its rack.</param>
/// <param name="IsUp">Whether the client can reach it now.</param>
/// <param name="TokenCount">How many tokens it owns.</param>
/// <param name="ShardCount">Its shard count (Scylla), 0 when not sharded.</param>
public sealed record CqlHost(string Address, string? Datacenter, string? Rack, bool IsUp, int TokenCount, int ShardCount);

/// <summary>The kinds of pushed EVENT (spec §4.2.6).</summary>
public enum CqlClusterEventKind
{
    /// <summary>TOPOLOGY_CHANGE NEW_NODE.</summary>
    NodeAdded,

    /// <summary>TOPOLOGY_CHANGE REMOVED_NODE.</summary>
    NodeRemoved,

    /// <summary>STATUS_CHANGE UP.</summary>
    NodeUp,

    /// <summary>STATUS_CHANGE DOWN.</summary>
    NodeDown,

    /// <summary>SCHEMA_CHANGE.</summary>
    SchemaChanged,
}

/// <summary>An event pushed by a node.</summary>
/// <param name="Kind">What happened.</param>
/// <param name="Address">For topology and status events: the node (host:port).</param>
/// <param name="SchemaChange">For schema events: what changed.</param>
public sealed record CqlClusterEvent(CqlClusterEventKind Kind, string? Address, CqlSchemaChange? SchemaChange);
