using System.Net;
using System.Net.Sockets;

namespace Gateway.Cql.TestPeer;

/// <summary>
/// A test double for a Scylla/Cassandra cluster: nodes on 127.0.0.1, 127.0.0.2, ... (all on one port) speaking the CQL
/// native protocol v4 over real sockets, sharing one in-memory data set (as if every node replicated everything), so a
/// real client can be tested where no database can run. Not a database: see the README of the project for its limits.
/// </summary>
public sealed class CqlTestCluster : IAsyncDisposable
{
    private readonly List<CqlTestNode> _nodes = [];
    private readonly Lock _topology = new();
    private int _nextIndex;

    private CqlTestCluster(CqlTestClusterOptions options)
    {
        Options = options;
        Engine = new Engine(new Database { BatchWarnThreshold = options.BatchWarnThreshold });
    }

    public CqlTestClusterOptions Options { get; }

    internal Engine Engine { get; }

    internal bool RequiresAuth => Options.Username is not null && Options.Password is not null;

    /// <summary>The nodes in the ring (removed ones excluded), in the order they were added.</summary>
    public IReadOnlyList<CqlTestNode> Nodes
    {
        get
        {
            lock (_topology)
            {
                return [.. _nodes];
            }
        }
    }

    internal IReadOnlyList<CqlTestNode> RingNodes => Nodes;

    /// <summary>The CQL port every node listens on.</summary>
    public int Port { get; private set; }

    /// <summary>The shard-aware port every node listens on (Scylla layout with it enabled), else null.</summary>
    public int? ShardAwarePort { get; private set; }

    /// <summary>"127.0.0.1:port", ... for every node.</summary>
    public IReadOnlyList<string> ContactPoints => [.. Nodes.Select(n => n.Address)];

    public static async Task<CqlTestCluster> StartAsync(CqlTestClusterOptions? options = null)
    {
        options ??= new CqlTestClusterOptions();
        if (options.Nodes is < 1 or > 200)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "Nodes must be between 1 and 200");
        }

        var cluster = new CqlTestCluster(options);
        for (var i = 0; i < options.Nodes; i++)
        {
            cluster._nodes.Add(cluster.NewNode());
        }

        for (var attempt = 0; ; attempt++)
        {
            var port = options.Port != 0 ? options.Port : FreePort();
            int? shardPort = options.Shards > 0 && options.ShardAwarePort ? FreePort() : null;
            try
            {
                foreach (var node in cluster._nodes)
                {
                    node.Listen(port, shardPort);
                }

                cluster.Port = port;
                cluster.ShardAwarePort = shardPort;
                break;
            }
            catch (SocketException) when (options.Port == 0 && attempt < 20)
            {
                // Someone holds that port on another loopback address: close what we opened and pick another.
                foreach (var node in cluster._nodes)
                {
                    node.StopListening();
                }
            }
        }

        await Task.CompletedTask;
        return cluster;
    }

    private static int FreePort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    private CqlTestNode NewNode()
    {
        var index = _nextIndex++;
        // Random but reproducible tokens: the same options give the same ring.
        var random = new Random(Options.TokenSeed + index);
        var tokens = Enumerable.Range(0, Math.Max(1, Options.TokensPerNode))
            .Select(_ => random.NextInt64(long.MinValue + 1, long.MaxValue)).Order().ToList();
        return new CqlTestNode(this, index, tokens);
    }

    /// <summary>Adds a node to the ring on the next loopback address; the others push TOPOLOGY_CHANGE NEW_NODE.</summary>
    public async Task<CqlTestNode> AddNodeAsync()
    {
        CqlTestNode node;
        lock (_topology)
        {
            node = NewNode();
        }

        node.Listen(Port, ShardAwarePort);
        lock (_topology)
        {
            _nodes.Add(node);
        }

        await PushTopologyAsync("NEW_NODE", node);
        return node;
    }

    /// <summary>Stops a node and takes it out of the ring (and system.peers); the others push REMOVED_NODE.</summary>
    public async Task RemoveNodeAsync(CqlTestNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        node.StopListening();
        lock (_topology)
        {
            _nodes.Remove(node);
        }

        await PushTopologyAsync("REMOVED_NODE", node);
    }

    /// <summary>Read access to a table's stored rows and cells, or null when it does not exist.</summary>
    public CqlTestTable? Table(string keyspace, string table)
    {
        lock (Engine.Db.Sync)
        {
            return Engine.Db.Keyspaces.TryGetValue(keyspace, out var ks) && ks.Tables.ContainsKey(table)
                ? new CqlTestTable(Engine.Db, keyspace, table)
                : null;
        }
    }

    /// <summary>The primary replica of a token: the node owning the first ring token at or after it (wrapping).</summary>
    public CqlTestNode PrimaryReplica(long token)
    {
        CqlTestNode? first = null, best = null;
        long firstToken = long.MaxValue, bestToken = long.MaxValue;
        foreach (var node in Nodes)
        {
            foreach (var t in node.Tokens)
            {
                if (t < firstToken || first is null)
                {
                    (first, firstToken) = (node, t);
                }

                if (t >= token && (best is null || t < bestToken))
                {
                    (best, bestToken) = (node, t);
                }
            }
        }

        return best ?? first ?? throw new InvalidOperationException("the ring is empty");
    }

    internal Task PushStatusAsync(string change, CqlTestNode about) =>
        PushToOthersAsync("STATUS_CHANGE", change, about);

    private Task PushTopologyAsync(string change, CqlTestNode about) =>
        PushToOthersAsync("TOPOLOGY_CHANGE", change, about);

    private async Task PushToOthersAsync(string type, string change, CqlTestNode about)
    {
        foreach (var node in Nodes.Where(n => n != about && n.IsUp))
        {
            await node.PushEventAsync(type, w =>
            {
                w.WriteString(change);
                w.WriteInet(about.Ip, Port);
            });
        }
    }

    internal void BroadcastSchemaChange(SchemaChangeResult change)
    {
        foreach (var node in Nodes.Where(n => n.IsUp))
        {
            _ = node.PushEventAsync("SCHEMA_CHANGE", change.WriteChange);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in Nodes)
        {
            node.StopListening();
        }

        await Task.CompletedTask;
    }
}
