using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Gateway.Cql.Cluster;
using Gateway.Cql.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gateway.Cql;

/// <summary>The machinery behind the public surface: topology, pools, routing, retries, reconnection.</summary>
public sealed partial class CqlCluster
{
    private static readonly string[] EventTypes = ["TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE"];

    [ThreadStatic]
    private static CqlFrameBuilder? _scratch;

    [ThreadStatic]
    private static CqlFrameBuilder? _routingKey;

    private readonly CqlClusterOptions _options;
    private readonly CqlConnectionSettings _settings;
    private readonly ILogger _logger;
    private readonly Lock _topologyLock = new();
    private readonly CancellationTokenSource _disposed = new();
    private readonly SemaphoreSlim _refreshGate = new(1, 1);
    private CqlHostState[] _hosts = [];
    private CqlTokenRing _ring = CqlTokenRing.Empty;
    private CqlConnection? _control;
    private string? _localDatacenter;
    private int _roundRobin;
    private int _disposedFlag;
    private int _controlReconnecting;
    private volatile bool _murmur3 = true;

    private CqlCluster(CqlClusterOptions options, ILoggerFactory? loggerFactory)
    {
        _options = options;
        _settings = CqlConnectionSettings.From(options);
        _logger = (ILogger?)loggerFactory?.CreateLogger<CqlCluster>() ?? NullLogger.Instance;
        _localDatacenter = options.LocalDatacenter;
    }

    private bool IsDisposed => Volatile.Read(ref _disposedFlag) != 0;

    private async Task InitializeAsync(CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, Exception>();
        foreach (var contact in _options.ContactPoints)
        {
            try
            {
                var (endPoint, name) = await ResolveAsync(contact, cancellationToken).ConfigureAwait(false);
                _control = await OpenControlAsync(endPoint, name, cancellationToken).ConfigureAwait(false);
                break;
            }
            catch (Exception e) when (e is CqlException or SocketException or ArgumentException)
            {
                errors[contact] = e;
            }
        }

        if (_control is null)
        {
            throw new CqlNoHostAvailableException(errors);
        }

        await RefreshTopologyAsync(_control, cancellationToken).ConfigureAwait(false);
        await Task.WhenAll(Volatile.Read(ref _hosts).Select(h => FillOrScheduleAsync(h, cancellationToken))).ConfigureAwait(false);
    }

    private async Task<CqlConnection> OpenControlAsync(IPEndPoint endPoint, string targetHost, CancellationToken cancellationToken)
    {
        var connection = await CqlConnection.OpenAsync(endPoint.ToString(), endPoint, targetHost, _settings, 0, cancellationToken).ConfigureAwait(false);
        try
        {
            if (_options.DiscoverPeers)
            {
                connection.EventReceived = OnControlEvent;
                using var b = new CqlFrameBuilder(128);
                CqlRequests.WriteRegister(b, EventTypes);
                var ready = await connection.RequestAsync(b.WrittenMemory, _settings.ConnectTimeout, cancellationToken).ConfigureAwait(false);
                ready.Release();
            }

            connection.Closed = OnControlClosed;
            if (connection.IsClosed)
            {
                throw new CqlConnectionException($"Control connection to {connection.Address} closed right after it opened");
            }

            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task<(IPEndPoint EndPoint, string Name)> ResolveAsync(string contact, CancellationToken cancellationToken)
    {
        var (host, port) = SplitHostPort(contact, _options.Port);
        if (IPAddress.TryParse(host, out var ip))
        {
            return (new IPEndPoint(ip, port), host);
        }

        var addresses = await Dns.GetHostAddressesAsync(host, cancellationToken).ConfigureAwait(false);
        var chosen = Array.Find(addresses, a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses.FirstOrDefault()
            ?? throw new CqlConnectionException($"{host} resolves to no address");
        return (new IPEndPoint(chosen, port), host);
    }

    internal static (string Host, int Port) SplitHostPort(string contact, int defaultPort)
    {
        if (contact.StartsWith('['))
        {
            var close = contact.IndexOf(']', StringComparison.Ordinal);
            var host = contact[1..close];
            return (host, close + 1 < contact.Length && contact[close + 1] == ':' ? int.Parse(contact.AsSpan(close + 2), CultureInfo.InvariantCulture) : defaultPort);
        }

        var colon = contact.IndexOf(':', StringComparison.Ordinal);
        return colon > 0 && colon == contact.LastIndexOf(':')
            ? (contact[..colon], int.Parse(contact.AsSpan(colon + 1), CultureInfo.InvariantCulture))
            : (contact, defaultPort);
    }

    /// <summary>Reads system.local and system.peers over the control connection and reconciles hosts, pools and ring.</summary>
    private async Task RefreshTopologyAsync(CqlConnection control, CancellationToken cancellationToken)
    {
        await _refreshGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var controlEndPoint = ParseEndPoint(control.Address);
            var found = new List<(IPEndPoint EndPoint, string? Dc, string? Rack, long[] Tokens, Guid? HostId)>();
            using (var local = await SystemTableAsync(control, "SELECT * FROM system.local WHERE key='local'", cancellationToken).ConfigureAwait(false))
            {
                if (local?.Rows is { Count: > 0 } rows)
                {
                    found.Add((controlEndPoint, Text(rows, 0, "data_center"), Text(rows, 0, "rack"), Tokens(rows, 0), Uuid(rows, 0, "host_id")));
                    if (Text(rows, 0, "partitioner") is { } partitioner && !partitioner.EndsWith("Murmur3Partitioner", StringComparison.Ordinal))
                    {
                        _murmur3 = false;
                        _logger.LogWarning("The cluster uses {Partitioner}; token-aware routing assumes Murmur3 and is off", partitioner);
                    }
                }
                else
                {
                    found.Add((controlEndPoint, null, null, [], null));
                }
            }

            if (_options.DiscoverPeers)
            {
                using var peers = await SystemTableAsync(control, "SELECT * FROM system.peers", cancellationToken).ConfigureAwait(false);
                if (peers?.Rows is { } rows)
                {
                    for (var i = 0; i < rows.Count; i++)
                    {
                        var address = Inet(rows, i, "rpc_address");
                        if (address is null || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any))
                        {
                            address = Inet(rows, i, "peer");
                        }

                        if (address is null)
                        {
                            continue;
                        }

                        var port = Int(rows, i, "native_port") ?? _options.Port;
                        found.Add((new IPEndPoint(address, port), Text(rows, i, "data_center"), Text(rows, i, "rack"), Tokens(rows, i), Uuid(rows, i, "host_id")));
                    }
                }
            }
            else
            {
                foreach (var contact in _options.ContactPoints)
                {
                    var (endPoint, _) = await ResolveAsync(contact, cancellationToken).ConfigureAwait(false);
                    if (!found.Exists(f => f.EndPoint.Equals(endPoint)))
                    {
                        found.Add((endPoint, null, null, [], null));
                    }
                }
            }

            _localDatacenter ??= found[0].Dc;
            List<CqlHostState> removed = [];
            lock (_topologyLock)
            {
                var next = new List<CqlHostState>();
                foreach (var f in found)
                {
                    var host = Array.Find(_hosts, h => h.EndPoint.Equals(f.EndPoint)) ?? new CqlHostState(f.EndPoint.ToString(), f.EndPoint);
                    host.Datacenter = f.Dc;
                    host.Rack = f.Rack;
                    host.Tokens = f.Tokens;
                    host.HostId = f.HostId;
                    next.Add(host);
                }

                removed.AddRange(_hosts.Where(h => !next.Contains(h)));
                Volatile.Write(ref _hosts, [.. next]);
                _ring = CqlTokenRing.Build(next, _localDatacenter);
            }

            foreach (var h in removed)
            {
                await RetireAsync(h).ConfigureAwait(false);
            }
        }
        finally
        {
            _refreshGate.Release();
        }
    }

    /// <summary>A system table read; a node that refuses it (a test double, restricted permissions) leaves the ring
    /// unknown, which only costs token-aware routing.</summary>
    private async Task<CqlResult?> SystemTableAsync(CqlConnection control, string query, CancellationToken cancellationToken)
    {
        try
        {
            return await ControlQueryAsync(control, query, cancellationToken).ConfigureAwait(false);
        }
        catch (CqlServerException e)
        {
            _logger.LogWarning(e, "{Query} failed on {Address}", query, control.Address);
            return null;
        }
    }

    private async Task<CqlResult> ControlQueryAsync(CqlConnection control, string query, CancellationToken cancellationToken)
    {
        using var b = new CqlFrameBuilder(128);
        CqlRequests.WriteQuery(b, query, [], new CqlQueryParameters(CqlConsistency.One));
        var frame = await control.RequestAsync(b.WrittenMemory, _settings.RequestTimeout, cancellationToken).ConfigureAwait(false);
        return CqlResponses.ReadResult(frame);
    }

    private static string? Text(CqlRows rows, int row, string column) =>
        rows.IndexOf(column) is var i and >= 0 && !rows.IsNull(row, i) ? rows.GetString(row, i) : null;

    private static int? Int(CqlRows rows, int row, string column) =>
        rows.IndexOf(column) is var i and >= 0 && !rows.IsNull(row, i) && rows.GetBytes(row, i).Length == 4 ? rows.GetInt32(row, i) : null;

    private static Guid? Uuid(CqlRows rows, int row, string column) =>
        rows.IndexOf(column) is var i and >= 0 && rows.GetBytes(row, i).Length == 16 ? rows.GetGuid(row, i) : null;

    private static IPAddress? Inet(CqlRows rows, int row, string column) =>
        rows.IndexOf(column) is var i and >= 0 && rows.GetBytes(row, i) is { Length: 4 or 16 } bytes ? new IPAddress(bytes) : null;

    private static long[] Tokens(CqlRows rows, int row)
    {
        var i = rows.IndexOf("tokens");
        if (i < 0 || rows.IsNull(row, i))
        {
            return [];
        }

        var list = rows.GetTextList(row, i);
        var tokens = new List<long>(list.Count);
        foreach (var t in list)
        {
            if (long.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
            {
                tokens.Add(v);
            }
        }

        return [.. tokens];
    }

    private static IPEndPoint ParseEndPoint(string address) => IPEndPoint.Parse(address);

    private async Task RetireAsync(CqlHostState host)
    {
        host.Removed = true;
        host.IsUp = false;
        foreach (var c in host.TakeAll())
        {
            // Closed as lost, not disposed: requests in flight on it must fail as a lost connection (idempotent ones
            // then move to the next node), not with the ObjectDisposedException meant for a disposed cluster.
            c.Close(new CqlConnectionException($"{host.Address} left the ring"));
            await c.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task FillOrScheduleAsync(CqlHostState host, CancellationToken cancellationToken)
    {
        try
        {
            await FillPoolAsync(host, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is CqlException or SocketException)
        {
            _logger.LogWarning(e, "Could not open the pool of {Address}", host.Address);
        }

        if (host.Connections.Length == 0)
        {
            host.IsUp = false;
        }

        if (!IsPoolFull(host))
        {
            ScheduleReconnect(host, immediate: false);
        }
    }

    private bool IsPoolFull(CqlHostState host)
    {
        var connections = host.Connections;
        var per = Math.Max(1, _options.ConnectionsPerHost);
        if (!_options.ShardAware || host.ShardCount == 0)
        {
            return connections.Length >= per;
        }

        for (var shard = 0; shard < host.ShardCount; shard++)
        {
            if (connections.Count(c => c.Shard == shard) < per)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Opens connections until the pool is full: ConnectionsPerHost, or that many per shard on a sharded node.</summary>
    private async Task FillPoolAsync(CqlHostState host, CancellationToken cancellationToken)
    {
        var per = Math.Max(1, _options.ConnectionsPerHost);
        if (host.Connections.Length == 0)
        {
            var first = await OpenPooledAsync(host, host.EndPoint, 0, cancellationToken).ConfigureAwait(false);
            host.LearnSharding(first, _options.Tls is not null);
            host.IsUp = true;
        }

        if (!_options.ShardAware || host.ShardCount == 0)
        {
            while (host.Connections.Length < per && !host.Removed)
            {
                await OpenPooledAsync(host, host.EndPoint, 0, cancellationToken).ConfigureAwait(false);
            }

            return;
        }

        var shards = host.ShardCount;
        if (host.ShardAwarePort > 0)
        {
            // The shard-aware port routes a connection to the shard given by its source port modulo the shard count.
            var target = new IPEndPoint(host.EndPoint.Address, host.ShardAwarePort);
            for (var shard = 0; shard < shards && !host.Removed; shard++)
            {
                while (host.Connections.Count(c => c.Shard == shard) < per)
                {
                    await OpenOnShardAsync(host, target, shard, cancellationToken).ConfigureAwait(false);
                }
            }

            return;
        }

        // Without that port the node picks the shard; keep connecting until each shard has its share, within bounds.
        var attempts = shards * per * 4;
        while (!IsPoolFull(host) && attempts-- > 0 && !host.Removed)
        {
            var extra = await OpenPooledAsync(host, host.EndPoint, 0, cancellationToken).ConfigureAwait(false);
            if (host.Connections.Count(c => c.Shard == extra.Shard) > per)
            {
                host.Remove(extra);
                extra.Closed = null;
                await extra.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private async Task OpenOnShardAsync(CqlHostState host, IPEndPoint target, int shard, CancellationToken cancellationToken)
    {
        const int LowPort = 49152;
        const int HighPort = 65535;
        var shards = host.ShardCount;
        var span = (HighPort - LowPort) / shards;
        Exception? last = null;
        for (var attempt = 0; attempt < 8; attempt++)
        {
            var port = LowPort + (Random.Shared.Next(span) * shards);
            port += ((shard - (port % shards)) + shards) % shards;
            if (port > HighPort)
            {
                continue;
            }

            try
            {
                await OpenPooledAsync(host, target, port, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (CqlConnectionException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse or SocketError.AddressNotAvailable })
            {
                last = e;
            }
        }

        throw new CqlConnectionException($"No free local port for shard {shard} of {host.Address}", last);
    }

    private async Task<CqlConnection> OpenPooledAsync(CqlHostState host, IPEndPoint endPoint, int localPort, CancellationToken cancellationToken)
    {
        var connection = await CqlConnection.OpenAsync(host.Address, endPoint, endPoint.Address.ToString(), _settings, localPort, cancellationToken).ConfigureAwait(false);
        host.Add(connection);
        connection.Closed = (c, reason) => OnPoolConnectionClosed(host, c, reason);
        if (connection.IsClosed)
        {
            host.Remove(connection);
            throw new CqlConnectionException($"Connection to {host.Address} closed right after it opened");
        }

        return connection;
    }

    private void OnPoolConnectionClosed(CqlHostState host, CqlConnection connection, Exception reason)
    {
        if (IsDisposed || host.Removed)
        {
            return;
        }

        if (host.Remove(connection))
        {
            host.IsUp = false;
            _logger.LogWarning("Lost the last connection to {Address} ({Reason}); marked down", host.Address, reason.Message);
        }

        ScheduleReconnect(host, immediate: false);
    }

    private void ScheduleReconnect(CqlHostState host, bool immediate)
    {
        if (IsDisposed || host.Removed)
        {
            return;
        }

        if (Interlocked.CompareExchange(ref host.Reconnecting, 1, 0) != 0)
        {
            if (immediate && host.Wake.CurrentCount == 0)
            {
                try
                {
                    host.Wake.Release();
                }
                catch (SemaphoreFullException)
                {
                    // Woken already.
                }
            }

            return;
        }

        _ = ReconnectLoopAsync(host, immediate);
    }

    /// <summary>Backoff for attempt n: base·2ⁿ, jittered by ±25% so nodes restarted together are not stormed in step,
    /// kept within [ReconnectBaseDelay, ReconnectMaxDelay].</summary>
    internal static TimeSpan Backoff(int attempt, TimeSpan baseDelay, TimeSpan maxDelay)
    {
        var raw = baseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt, 30));
        var jittered = raw * (0.75 + (Random.Shared.NextDouble() * 0.5));
        return TimeSpan.FromMilliseconds(Math.Clamp(jittered, baseDelay.TotalMilliseconds, Math.Max(baseDelay.TotalMilliseconds, maxDelay.TotalMilliseconds)));
    }

    private async Task ReconnectLoopAsync(CqlHostState host, bool immediate)
    {
        var token = _disposed.Token;
        try
        {
            for (var attempt = 0; !token.IsCancellationRequested && !host.Removed; attempt++)
            {
                if (!immediate || attempt > 0)
                {
                    await host.Wake.WaitAsync(Backoff(attempt, _options.ReconnectBaseDelay, _options.ReconnectMaxDelay), token).ConfigureAwait(false);
                }

                try
                {
                    await FillPoolAsync(host, token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is CqlException or SocketException)
                {
                    _logger.LogDebug(e, "Reconnecting to {Address} failed (attempt {Attempt})", host.Address, attempt + 1);
                }

                if (host.Connections.Length > 0)
                {
                    host.IsUp = true;
                }

                if (IsPoolFull(host))
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Disposed.
        }
        finally
        {
            Volatile.Write(ref host.Reconnecting, 0);
        }
    }

    private void OnControlClosed(CqlConnection connection, Exception reason)
    {
        if (IsDisposed || Interlocked.CompareExchange(ref _controlReconnecting, 1, 0) != 0)
        {
            return;
        }

        _logger.LogWarning("Control connection to {Address} lost: {Reason}", connection.Address, reason.Message);
        _ = ReconnectControlAsync();
    }

    private async Task ReconnectControlAsync()
    {
        var token = _disposed.Token;
        try
        {
            for (var attempt = 0; !token.IsCancellationRequested; attempt++)
            {
                await Task.Delay(Backoff(attempt, _options.ReconnectBaseDelay, _options.ReconnectMaxDelay), token).ConfigureAwait(false);
                foreach (var host in Volatile.Read(ref _hosts).OrderByDescending(h => h.IsUp))
                {
                    try
                    {
                        var control = await OpenControlAsync(host.EndPoint, host.EndPoint.Address.ToString(), token).ConfigureAwait(false);
                        Volatile.Write(ref _control, control);
                        if (IsDisposed)
                        {
                            await control.DisposeAsync().ConfigureAwait(false);
                            return;
                        }

                        await RefreshTopologyAsync(control, token).ConfigureAwait(false);
                        foreach (var h in Volatile.Read(ref _hosts))
                        {
                            if (!IsPoolFull(h))
                            {
                                ScheduleReconnect(h, immediate: true);
                            }
                        }

                        return;
                    }
                    catch (Exception e) when (e is CqlException or SocketException)
                    {
                        _logger.LogDebug(e, "Control connection to {Address} failed", host.Address);
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Disposed.
        }
        finally
        {
            Volatile.Write(ref _controlReconnecting, 0);
        }
    }

    /// <summary>Runs on the control connection's read loop: the work goes to the pool so that loop keeps reading.</summary>
    private void OnControlEvent(CqlEventMessage message) => _ = Task.Run(() => ApplyEventAsync(message));

    private async Task ApplyEventAsync(CqlEventMessage message)
    {
        try
        {
            var host = message.Node is { } node ? FindHost(node) : null;
            switch (message.Kind)
            {
                case CqlClusterEventKind.NodeAdded when Volatile.Read(ref _control) is { } control:
                    await RefreshTopologyAsync(control, _disposed.Token).ConfigureAwait(false);
                    host = FindHost(message.Node!);
                    if (host is null)
                    {
                        // Not in system.peers yet: known by its address until the next refresh.
                        host = new CqlHostState(message.Node!.ToString(), message.Node!);
                        lock (_topologyLock)
                        {
                            Volatile.Write(ref _hosts, [.. _hosts, host]);
                        }
                    }

                    ScheduleReconnect(host, immediate: true);
                    break;
                case CqlClusterEventKind.NodeRemoved when host is not null:
                    lock (_topologyLock)
                    {
                        Volatile.Write(ref _hosts, Array.FindAll(_hosts, h => h != host));
                        _ring = CqlTokenRing.Build(_hosts, _localDatacenter);
                    }

                    await RetireAsync(host).ConfigureAwait(false);
                    break;
                case CqlClusterEventKind.NodeUp when host is not null:
                    ScheduleReconnect(host, immediate: true);
                    break;
                case CqlClusterEventKind.NodeDown when host is not null:
                    host.IsUp = false;
                    foreach (var c in host.TakeAll())
                    {
                        c.Closed = null;

                        // As in RetireAsync: requests in flight fail as lost (and idempotent ones move on), not as disposed.
                        c.Close(new CqlConnectionException($"{host.Address} was reported down"));
                        await c.DisposeAsync().ConfigureAwait(false);
                    }

                    ScheduleReconnect(host, immediate: false);
                    break;
            }
        }
        catch (Exception e) when (e is CqlException or SocketException or OperationCanceledException)
        {
            _logger.LogWarning(e, "Applying {Kind} for {Node} failed", message.Kind, message.Node);
        }

        OnEvent(new CqlClusterEvent(message.Kind, message.Node?.ToString(), message.SchemaChange));
    }

    private CqlHostState? FindHost(IPEndPoint node)
    {
        var hosts = Volatile.Read(ref _hosts);
        return Array.Find(hosts, h => h.EndPoint.Equals(node))
            ?? (hosts.Count(h => h.EndPoint.Address.Equals(node.Address)) == 1 ? Array.Find(hosts, h => h.EndPoint.Address.Equals(node.Address)) : null);
    }

    private CqlQueryParameters Parameters(in CqlStatementOptions o, bool skipMetadata) => new(
        o.Consistency ?? _options.DefaultConsistency,
        o.SerialConsistency ?? _options.DefaultSerialConsistency,
        o.PageSize > 0 ? o.PageSize : _options.DefaultPageSize,
        o.PagingState,
        o.DefaultTimestamp,
        skipMetadata,
        o.Tracing);

    /// <summary>The Murmur3 token of the bound partition key, or null when it cannot be computed.</summary>
    private long? RoutingToken(CqlPrepared prepared, ReadOnlySpan<CqlValue> values)
    {
        if (!_options.TokenAware || !_murmur3 || prepared.PartitionKeyIndexes.Count == 0)
        {
            return null;
        }

        var scratch = _scratch ??= new CqlFrameBuilder(64);
        var key = _routingKey ??= new CqlFrameBuilder(64);
        return CqlRequests.WriteRoutingKey(scratch, key, prepared.PartitionKeyIndexes, prepared.Variables, values) ? Murmur3.Token(key.WrittenSpan) : null;
    }

    /// <summary>Up nodes in the order to try: replicas of the token (local ones first), then the local data center
    /// from a rotating start, then the others.</summary>
    private List<CqlHostState> QueryPlan(long? token)
    {
        var hosts = Volatile.Read(ref _hosts);
        var plan = new List<CqlHostState>(hosts.Length);
        if (token is { } t)
        {
            foreach (var r in _ring.Replicas(t))
            {
                if (r.IsUp && !r.Removed)
                {
                    plan.Add(r);
                }
            }
        }

        if (hosts.Length == 0)
        {
            return plan;
        }

        var start = (int)((uint)Interlocked.Increment(ref _roundRobin) % (uint)hosts.Length);
        for (var pass = 0; pass < 2; pass++)
        {
            for (var i = 0; i < hosts.Length; i++)
            {
                var h = hosts[(start + i) % hosts.Length];
                var local = _localDatacenter is null || h.Datacenter is null || h.Datacenter == _localDatacenter;
                if (local == (pass == 0) && h.IsUp && !plan.Contains(h))
                {
                    plan.Add(h);
                }
            }
        }

        return plan;
    }

    private async Task<CqlPrepared> PrepareCoreAsync(string query, CancellationToken cancellationToken)
    {
        var frame = new CqlFrameBuilder();
        CqlRequests.WritePrepare(frame, query);
        var response = await RunAsync(frame, null, idempotent: true, _options.RequestTimeout, null, cancellationToken).ConfigureAwait(false);
        try
        {
            return CqlResponses.ReadPrepared(query, response);
        }
        finally
        {
            response.Release();
        }
    }

    private async Task<CqlResult> RunResultAsync(CqlFrameBuilder frame, long? token, CqlStatementOptions options, IReadOnlyList<CqlColumn>? knownColumns, Func<ReadOnlyMemory<byte>, string?>? unprepared, CancellationToken cancellationToken)
    {
        var response = await RunAsync(frame, token, options.Idempotent, options.Timeout ?? _options.RequestTimeout, unprepared, cancellationToken).ConfigureAwait(false);
        return CqlResponses.ReadResult(response, knownColumns);
    }

    /// <summary>
    /// Sends the encoded request along the query plan and applies the retry policy: Unprepared re-prepares on that node
    /// and retries once; Overloaded, IsBootstrapping and requests that never left go to the next node; timeouts,
    /// Unavailable and a connection lost mid-request go to the next node only for idempotent statements. Owns
    /// <paramref name="frame"/> and disposes it.
    /// </summary>
    private async Task<CqlResponseFrame> RunAsync(CqlFrameBuilder frame, long? token, bool idempotent, TimeSpan timeout, Func<ReadOnlyMemory<byte>, string?>? unprepared, CancellationToken cancellationToken)
    {
        using var _ = frame;
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        Dictionary<string, Exception>? errors = null;
        foreach (var host in QueryPlan(token))
        {
            var connection = host.Pick(token);
            if (connection is null)
            {
                (errors ??= [])[host.Address] = new CqlConnectionException($"No open connection to {host.Address}");
                continue;
            }

            try
            {
                return await SendOnAsync(connection, frame, timeout, unprepared, cancellationToken).ConfigureAwait(false);
            }
            catch (CqlServerException e) when (e.Code is CqlErrorCode.Overloaded or CqlErrorCode.IsBootstrapping
                || (idempotent && e.Code is CqlErrorCode.ReadTimeout or CqlErrorCode.WriteTimeout or CqlErrorCode.Unavailable))
            {
                (errors ??= [])[host.Address] = e;
            }
            catch (CqlNotSentException e)
            {
                (errors ??= [])[host.Address] = e;
            }
            catch (CqlException e) when (idempotent && e is CqlTimeoutException or CqlConnectionException)
            {
                (errors ??= [])[host.Address] = e;
            }
            catch (ObjectDisposedException) when (IsDisposed)
            {
                throw;
            }
        }

        throw new CqlNoHostAvailableException(errors ?? []);
    }

    private async Task<CqlResponseFrame> SendOnAsync(CqlConnection connection, CqlFrameBuilder frame, TimeSpan timeout, Func<ReadOnlyMemory<byte>, string?>? unprepared, CancellationToken cancellationToken)
    {
        try
        {
            return await connection.RequestAsync(frame.WrittenMemory, timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (CqlServerException e) when (e.Code == CqlErrorCode.Unprepared && unprepared?.Invoke(e.UnpreparedId) is { } query)
        {
            // The node lost the statement (restart, eviction): prepare it there and retry once on the same connection.
            using (var prepare = new CqlFrameBuilder(query.Length + 32))
            {
                CqlRequests.WritePrepare(prepare, query);
                var prepared = await connection.RequestAsync(prepare.WrittenMemory, timeout, cancellationToken).ConfigureAwait(false);
                prepared.Release();
            }

            return await connection.RequestAsync(frame.WrittenMemory, timeout, cancellationToken).ConfigureAwait(false);
        }
    }
}
