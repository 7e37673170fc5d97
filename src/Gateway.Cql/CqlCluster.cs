using Gateway.Cql.Protocol;
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
    public static async Task<CqlCluster> ConnectAsync(CqlClusterOptions options, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.ContactPoints.Count == 0)
        {
            throw new ArgumentException("At least one contact point is needed", nameof(options));
        }

        var cluster = new CqlCluster(options, loggerFactory);
        try
        {
            await cluster.InitializeAsync(cancellationToken).ConfigureAwait(false);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The nodes known now, up or down.</summary>
    public IReadOnlyList<CqlHost> Hosts => Array.ConvertAll(Volatile.Read(ref _hosts), h => h.ToPublic());

    /// <summary>Raised for every topology, status and schema event a node pushes (after the client applied it).</summary>
    public event Action<CqlClusterEvent>? Event;

    /// <summary>Prepares a statement (on the node that routes it and, lazily, on others: an Unprepared answer prepares
    /// it there and retries once).</summary>
    public Task<CqlPrepared> PrepareAsync(string query, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(query);
        return PrepareCoreAsync(query, cancellationToken);
    }

    /// <summary>Runs a plain statement (QUERY) with optional positional values.</summary>
    public Task<CqlResult> QueryAsync(string query, CqlValue[]? values = null, CqlStatementOptions options = default, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(query);
        var frame = new CqlFrameBuilder();
        try
        {
            CqlRequests.WriteQuery(frame, query, values, Parameters(options, skipMetadata: false));
        }
        catch
        {
            frame.Dispose();
            throw;
        }

        return RunResultAsync(frame, null, options, null, null, cancellationToken);
    }

    /// <summary>Runs a prepared statement (EXECUTE) with its values in marker order, routed by its partition key.</summary>
    public Task<CqlResult> ExecuteAsync(CqlPrepared prepared, CqlValue[] values, CqlStatementOptions options = default, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prepared);
        values ??= [];
        var frame = new CqlFrameBuilder();
        long? token;
        try
        {
            var skip = prepared.ResultColumns.Count > 0;
            CqlRequests.WriteExecute(frame, prepared.Id.Span, prepared.Variables, values, Parameters(options, skip));
            token = RoutingToken(prepared, values);
        }
        catch
        {
            frame.Dispose();
            throw;
        }

        return RunResultAsync(frame, token, options, prepared.ResultColumns.Count > 0 ? prepared.ResultColumns : null, id => id.Span.SequenceEqual(prepared.Id.Span) ? prepared.Query : null, cancellationToken);
    }

    /// <summary>Runs a BATCH, routed by the partition key of its first prepared statement.</summary>
    public Task<CqlResult> BatchAsync(CqlBatch batch, CqlStatementOptions options = default, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Count == 0)
        {
            throw new ArgumentException("The batch is empty", nameof(batch));
        }

        var frame = new CqlFrameBuilder();
        long? token = null;
        try
        {
            CqlRequests.WriteBatch(frame, batch, options.Consistency ?? _options.DefaultConsistency, options.SerialConsistency ?? _options.DefaultSerialConsistency, options.DefaultTimestamp);
            foreach (var (prepared, _, values) in batch.Statements)
            {
                if (prepared is not null)
                {
                    token = RoutingToken(prepared, values);
                    break;
                }
            }
        }
        catch
        {
            frame.Dispose();
            throw;
        }

        // The statements are copied now: the caller may clear and refill the batch while this one runs.
        var statements = batch.Statements.Where(s => s.Prepared is not null).Select(s => s.Prepared!).ToArray();
        return RunResultAsync(frame, token, options, null, id => Array.Find(statements, p => id.Span.SequenceEqual(p.Id.Span))?.Query, cancellationToken);
    }

    /// <summary>Closes every connection; requests in flight fail with <see cref="ObjectDisposedException"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposedFlag, 1) != 0)
        {
            return;
        }

        await _disposed.CancelAsync().ConfigureAwait(false);
        var closing = new List<ValueTask>();
        if (Interlocked.Exchange(ref _control, null) is { } control)
        {
            closing.Add(control.DisposeAsync());
        }

        foreach (var host in Volatile.Read(ref _hosts))
        {
            foreach (var c in host.TakeAll())
            {
                closing.Add(c.DisposeAsync());
            }
        }

        foreach (var c in closing)
        {
            await c.ConfigureAwait(false);
        }

    }

    internal void OnEvent(CqlClusterEvent e)
    {
        try
        {
            Event?.Invoke(e);
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "A CqlCluster.Event handler threw for {Kind}", e.Kind);
        }
    }
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
