using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Gateway.Cql.TestPeer;

/// <summary>
/// One node of the CQL test double: listens on its own loopback address (and optionally a shard-aware port), answers
/// the native protocol v4, and lets tests inject faults (delays, blackholes, errors, dropped connections, restarts).
/// </summary>
public sealed class CqlTestNode
{
    private const int LogCapacity = 10_000;

    private readonly ConcurrentDictionary<Connection, byte> _connections = new();
    private readonly ConcurrentQueue<CqlTestRequest> _log = new();
    private readonly long[] _requests = new long[256];
    private readonly Lock _failLock = new();
    private Socket? _listener;
    private Socket? _shardListener;
    private int _roundRobin = -1;
    private int _maxInFlight;
    private int _failCode;
    private int _failCount;
    private long _responseDelayTicks;
    private volatile bool _blackhole;

    internal CqlTestNode(CqlTestCluster cluster, int index, IReadOnlyList<long> tokens)
    {
        Cluster = cluster;
        Index = index;
        Ip = new IPAddress([127, 0, 0, (byte)(index + 1)]);
        Tokens = tokens;
        Info = new NodeInfo(Ip, new Guid(System.Security.Cryptography.MD5.HashData(Ip.GetAddressBytes())),
            cluster.Options.DataCenter, "rack1", tokens);
    }

    internal CqlTestCluster Cluster { get; }

    internal int Index { get; }

    internal NodeInfo Info { get; }

    internal ConcurrentDictionary<string, PreparedEntry> Prepared { get; } = new(StringComparer.Ordinal);

    /// <summary>"127.0.0.N:port".</summary>
    public string Address => $"{Ip}:{Cluster.Port}";

    public IPAddress Ip { get; }

    public IReadOnlyList<long> Tokens { get; }

    public Guid HostId => Info.HostId;

    public int ShardCount => Math.Max(1, Cluster.Options.Shards);

    public int? ShardAwarePort => Cluster.ShardAwarePort;

    /// <summary>Whether the node is listening (not stopped).</summary>
    public bool IsUp { get; private set; }

    /// <summary>Delays every response by this much (requests are still read and handled concurrently).</summary>
    public TimeSpan ResponseDelay
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _responseDelayTicks));
        set => Interlocked.Exchange(ref _responseDelayTicks, value.Ticks);
    }

    /// <summary>Reads requests but never answers them.</summary>
    public bool Blackhole
    {
        get => _blackhole;
        set => _blackhole = value;
    }

    /// <summary>The most requests one connection had unanswered at once (evidence of multiplexing).</summary>
    public int MaxInFlightPerConnection => Volatile.Read(ref _maxInFlight);

    /// <summary>The most recent requests (up to 10,000), oldest first.</summary>
    public IReadOnlyCollection<CqlTestRequest> Log => _log.ToArray();

    public int OpenConnections => _connections.Count;

    /// <summary>Requests received with this opcode (0x07 QUERY, 0x09 PREPARE, 0x0A EXECUTE, 0x0D BATCH, ...).</summary>
    public long Requests(byte opcode) => Interlocked.Read(ref _requests[opcode]);

    /// <summary>The next <paramref name="count"/> QUERY/EXECUTE/BATCH requests fail with this error code (with valid details).</summary>
    public void FailNext(int errorCode, int count = 1)
    {
        lock (_failLock)
        {
            _failCode = errorCode;
            _failCount = count;
        }
    }

    /// <summary>Forgets every prepared statement: EXECUTEs answer Unprepared until the statement is PREPAREd here again.</summary>
    public void ForgetPrepared() => Prepared.Clear();

    /// <summary>Resets the request log, the counters and the in-flight high-water mark.</summary>
    public void ClearLog()
    {
        _log.Clear();
        Array.Clear(_requests);
        Volatile.Write(ref _maxInFlight, 0);
    }

    /// <summary>Closes every open connection abruptly (RST); the listener stays.</summary>
    public void DropConnections()
    {
        foreach (var c in _connections.Keys)
        {
            c.Abort();
        }
    }

    /// <summary>Closes the listener and every connection (abruptly); the other nodes push STATUS_CHANGE DOWN.</summary>
    public async Task StopAsync()
    {
        if (!IsUp)
        {
            return;
        }

        StopListening();
        await Cluster.PushStatusAsync("DOWN", this);
    }

    /// <summary>Listens again on the same address and port; the other nodes push STATUS_CHANGE UP.</summary>
    public async Task StartAsync()
    {
        if (IsUp)
        {
            return;
        }

        for (var attempt = 0; ; attempt++)
        {
            try
            {
                Listen(Cluster.Port, Cluster.ShardAwarePort);
                break;
            }
            catch (SocketException) when (attempt < 50)
            {
                // The port may still be held for a moment after the stop; try again shortly.
                await Task.Delay(100);
            }
        }

        await Cluster.PushStatusAsync("UP", this);
    }

    /// <summary>Pushes a SCHEMA_CHANGE event to this node's connections registered for it.</summary>
    public Task PushSchemaChange(string change, string target, string keyspace, string? name = null) =>
        PushEventAsync("SCHEMA_CHANGE", w => new SchemaChangeResult(change, target, keyspace, name).WriteChange(w));

    internal async Task PushEventAsync(string type, Action<WireWriter> body)
    {
        var w = new WireWriter();
        w.WriteString(type);
        body(w);
        foreach (var c in _connections.Keys.Where(c => c.IsRegistered(type)))
        {
            await c.SendEventAsync(w);
        }
    }

    internal void Listen(int port, int? shardAwarePort)
    {
        var listener = Bind(port);
        Socket? shard = null;
        try
        {
            if (shardAwarePort is { } sp)
            {
                shard = Bind(sp);
            }
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        _listener = listener;
        _shardListener = shard;
        IsUp = true;
        _ = AcceptLoopAsync(listener, false);
        if (shard is not null)
        {
            _ = AcceptLoopAsync(shard, true);
        }
    }

    private Socket Bind(int port)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            s.Bind(new IPEndPoint(Ip, port));
            s.Listen(512);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    internal void StopListening()
    {
        IsUp = false;
        _listener?.Dispose();
        _shardListener?.Dispose();
        _listener = null;
        _shardListener = null;
        DropConnections();
    }

    private async Task AcceptLoopAsync(Socket listener, bool shardAware)
    {
        while (true)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }

            socket.NoDelay = true;
            var shard = 0;
            if (ShardCount > 1)
            {
                // On the shard-aware port the client picks the shard through its source port, as with Scylla.
                shard = shardAware
                    ? ((IPEndPoint)socket.RemoteEndPoint!).Port % ShardCount
                    : (int)((uint)Interlocked.Increment(ref _roundRobin) % (uint)ShardCount);
            }

            var connection = new Connection(socket, this, shard);
            _connections[connection] = 0;
            if (!IsUp)
            {
                connection.Abort();
                continue;
            }

            _ = Task.Run(connection.RunAsync);
        }
    }

    internal void Forget(Connection c) => _connections.TryRemove(c, out _);

    internal void CountRequest(byte opcode) => Interlocked.Increment(ref _requests[opcode]);

    internal void NoteInFlight(int inFlight)
    {
        var max = Volatile.Read(ref _maxInFlight);
        while (inFlight > max)
        {
            var seen = Interlocked.CompareExchange(ref _maxInFlight, inFlight, max);
            if (seen == max)
            {
                return;
            }

            max = seen;
        }
    }

    internal int? TakeFailure()
    {
        lock (_failLock)
        {
            if (_failCount <= 0)
            {
                return null;
            }

            _failCount--;
            return _failCode;
        }
    }

    internal void AddLog(LogDraft d)
    {
        bool? replica = d.Token is { } t ? Cluster.PrimaryReplica(t) == this : null;
        int? tokenShard = d.Token is { } tk ? Murmur3Token.ShardOf(tk, ShardCount) : null;
        _log.Enqueue(new CqlTestRequest(d.Opcode, d.Query, d.PreparedId, d.Shard, d.Token, replica, tokenShard, d.Stream));
        while (_log.Count > LogCapacity)
        {
            _log.TryDequeue(out _);
        }
    }

    internal WireWriter Supported(int shard)
    {
        var options = new List<KeyValuePair<string, string[]>>
        {
            new("CQL_VERSION", ["3.4.5"]),
            new("COMPRESSION", []),
        };
        if (Cluster.Options.Shards > 0)
        {
            options.Add(new("SCYLLA_SHARD", [shard.ToString(System.Globalization.CultureInfo.InvariantCulture)]));
            options.Add(new("SCYLLA_NR_SHARDS", [ShardCount.ToString(System.Globalization.CultureInfo.InvariantCulture)]));
            options.Add(new("SCYLLA_SHARDING_ALGORITHM", ["biased-token-round-robin"]));
            options.Add(new("SCYLLA_SHARDING_IGNORE_MSB", ["12"]));
            options.Add(new("SCYLLA_PARTITIONER", ["org.apache.cassandra.dht.Murmur3Partitioner"]));
            if (ShardAwarePort is { } p)
            {
                options.Add(new("SCYLLA_SHARD_AWARE_PORT", [p.ToString(System.Globalization.CultureInfo.InvariantCulture)]));
            }
        }

        var w = new WireWriter();
        w.WriteStringMultimap(options);
        return w;
    }

    public override string ToString() => Address;
}
