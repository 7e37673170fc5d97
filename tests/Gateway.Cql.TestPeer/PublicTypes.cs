using System.Buffers.Binary;
using System.Text;

namespace Gateway.Cql.TestPeer;

/// <summary>How a <see cref="CqlTestCluster"/> (an in-memory CQL test double) is laid out.</summary>
public sealed class CqlTestClusterOptions
{
    /// <summary>Nodes at start; node i listens on 127.0.0.(i+1).</summary>
    public int Nodes { get; set; } = 1;

    public int TokensPerNode { get; set; } = 8;

    /// <summary>0: a plain Cassandra-like node; above 0: a Scylla-like node advertising this many shards.</summary>
    public int Shards { get; set; }

    /// <summary>With <see cref="Shards"/>: also listen on a shard-aware port (shard = client source port % shards).</summary>
    public bool ShardAwarePort { get; set; }

    /// <summary>With <see cref="Password"/>: require PasswordAuthenticator (SASL PLAIN) logins.</summary>
    public string? Username { get; set; }

    public string? Password { get; set; }

    public string DataCenter { get; set; } = "dc1";

    /// <summary>The CQL port every node shares (0: pick a free one).</summary>
    public int Port { get; set; }

    /// <summary>Batches with more statements than this get a batch-size warning in the response.</summary>
    public int BatchWarnThreshold { get; set; } = 5;

    /// <summary>Seed of the nodes' random tokens, so a layout is reproducible.</summary>
    public int TokenSeed { get; set; } = 20240601;
}

/// <summary>One request a test-double node received, for asserting routing and multiplexing.</summary>
/// <param name="Opcode">The request opcode (0x07 QUERY, 0x09 PREPARE, 0x0A EXECUTE, 0x0D BATCH, ...).</param>
/// <param name="Query">The query text (QUERY, PREPARE, and EXECUTE of a known id).</param>
/// <param name="PreparedId">The prepared id of an EXECUTE.</param>
/// <param name="Shard">The shard of the connection it came on.</param>
/// <param name="Token">The token of the bound partition key, when the statement has one.</param>
/// <param name="IsReplica">Whether this node is the primary replica of <paramref name="Token"/>.</param>
/// <param name="TokenShard">The shard owning <paramref name="Token"/> on this node (Scylla layout).</param>
/// <param name="Stream">The request's stream id.</param>
public sealed record CqlTestRequest(
    byte Opcode,
    string? Query,
    byte[]? PreparedId,
    int Shard,
    long? Token,
    bool? IsReplica,
    int? TokenShard,
    short Stream);

/// <summary>One stored cell version: a value (null: tombstone), its write timestamp (µs) and expiry.</summary>
public sealed record CqlTestCell(byte[]? Value, long Timestamp, DateTimeOffset? ExpiresAt)
{
    public bool IsTombstone => Value is null;
}

/// <summary>A snapshot of one stored row of the test double, with its raw cells (tombstones and expired ones included).</summary>
public sealed class CqlTestRow
{
    internal CqlTestRow(long token, bool isLive, Dictionary<string, byte[]> key, Dictionary<string, CqlTestCell> cells,
        Dictionary<string, byte[]> live, CqlTestCell? marker)
    {
        Token = token;
        IsLive = isLive;
        Key = key;
        Cells = cells;
        LiveValues = live;
        Marker = marker;
    }

    public long Token { get; }

    /// <summary>Whether a SELECT would return this row now.</summary>
    public bool IsLive { get; }

    /// <summary>Partition key and clustering values by column name.</summary>
    public IReadOnlyDictionary<string, byte[]> Key { get; }

    /// <summary>The newest cell version of each regular column (possibly a tombstone or expired).</summary>
    public IReadOnlyDictionary<string, CqlTestCell> Cells { get; }

    /// <summary>The values a SELECT would return now (key columns and live cells).</summary>
    public IReadOnlyDictionary<string, byte[]> LiveValues { get; }

    /// <summary>The row marker INSERT writes (UPDATE does not).</summary>
    public CqlTestCell? Marker { get; }

    public byte[]? Value(string column) => LiveValues.GetValueOrDefault(column);

    public string? Text(string column) => Value(column) is { } v ? Encoding.UTF8.GetString(v) : null;

    public long? Bigint(string column) => Value(column) is { Length: 8 } v ? BinaryPrimitives.ReadInt64BigEndian(v) : null;

    public int? Int(string column) => Value(column) is { Length: 4 } v ? BinaryPrimitives.ReadInt32BigEndian(v) : null;

    public long? WriteTime(string column) => Cells.TryGetValue(column, out var c) ? c.Timestamp : null;
}

/// <summary>Read access to one table of the test double's shared data set, for assertions.</summary>
public sealed class CqlTestTable
{
    private readonly Database _db;

    internal CqlTestTable(Database db, string keyspace, string name)
    {
        _db = db;
        Keyspace = keyspace;
        Name = name;
    }

    public string Keyspace { get; }

    public string Name { get; }

    /// <summary>The rows a full SELECT would return now, partitions in token order.</summary>
    public IReadOnlyList<CqlTestRow> Rows => Snapshot().Where(r => r.IsLive).ToList();

    /// <summary>Every stored row, dead ones (deleted, expired, only tombstones) included.</summary>
    public IReadOnlyList<CqlTestRow> AllRows => Snapshot();

    private List<CqlTestRow> Snapshot()
    {
        lock (_db.Sync)
        {
            var result = new List<CqlTestRow>();
            if (!_db.Keyspaces.TryGetValue(Keyspace, out var ks) || !ks.Tables.TryGetValue(Name, out var t))
            {
                return result;
            }

            var nowMs = Database.NowMs;
            foreach (var p in t.PartitionsInTokenOrder())
            {
                foreach (var row in p.Rows)
                {
                    var key = new Dictionary<string, byte[]>(StringComparer.Ordinal);
                    foreach (var c in t.PartitionKey)
                    {
                        key[c.Name] = p.Key[c.Position];
                    }

                    foreach (var c in t.Clustering)
                    {
                        key[c.Name] = row.Clustering[c.Position];
                    }

                    var deletedAt = p.DeletionFor(t, row);
                    var live = new Dictionary<string, byte[]>(key, StringComparer.Ordinal);
                    foreach (var c in t.Regular)
                    {
                        if (PartitionData.LiveCell(row, c.Name, deletedAt, nowMs) is { } cell)
                        {
                            live[c.Name] = cell.Value!;
                        }
                    }

                    result.Add(new CqlTestRow(p.Token, p.IsRowLive(t, row, nowMs), key,
                        row.Cells.ToDictionary(kv => kv.Key, kv => Public(kv.Value), StringComparer.Ordinal), live,
                        row.Marker is null ? null : Public(row.Marker)));
                }
            }

            return result;
        }
    }

    private static CqlTestCell Public(Cell c) =>
        new(c.Value, c.Timestamp, c.ExpiresAtMs == 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds(c.ExpiresAtMs));
}
