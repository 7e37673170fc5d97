namespace Gateway.Cql.TestPeer;

internal enum ColumnRole
{
    PartitionKey,
    Clustering,
    Regular,
}

internal sealed class ColumnDef(string name, ColumnType type, ColumnRole role, int position, bool descending)
{
    public string Name { get; } = name;

    public ColumnType Type { get; } = type;

    public ColumnRole Role { get; } = role;

    /// <summary>The column's index within its role (partition key component or clustering column).</summary>
    public int Position { get; } = position;

    public bool Descending { get; } = descending;
}

internal sealed class KeyspaceDef(string name, Dictionary<string, string> replication, bool durableWrites)
{
    public string Name { get; } = name;

    public Dictionary<string, string> Replication { get; } = replication;

    public bool DurableWrites { get; } = durableWrites;

    public Dictionary<string, TableDef> Tables { get; } = new(StringComparer.Ordinal);
}

/// <summary>A table's schema and its data (partitions of rows of timestamped cells).</summary>
internal sealed class TableDef
{
    public TableDef(string keyspace, string name, IEnumerable<ColumnDef> columns, int defaultTtl)
    {
        Keyspace = keyspace;
        Name = name;
        DefaultTtl = defaultTtl;
        var all = columns.ToList();
        PartitionKey = [.. all.Where(c => c.Role == ColumnRole.PartitionKey).OrderBy(c => c.Position)];
        Clustering = [.. all.Where(c => c.Role == ColumnRole.Clustering).OrderBy(c => c.Position)];
        // SELECT * lists the key columns in key order, then the other columns by name, as Cassandra does.
        Regular = [.. all.Where(c => c.Role == ColumnRole.Regular).OrderBy(c => c.Name, StringComparer.Ordinal)];
        Columns = [.. PartitionKey, .. Clustering, .. Regular];
        ByName = Columns.ToDictionary(c => c.Name, StringComparer.Ordinal);
    }

    public string Keyspace { get; }

    public string Name { get; }

    public int DefaultTtl { get; }

    public List<ColumnDef> PartitionKey { get; }

    public List<ColumnDef> Clustering { get; }

    public List<ColumnDef> Regular { get; }

    public List<ColumnDef> Columns { get; }

    public Dictionary<string, ColumnDef> ByName { get; }

    public Dictionary<string, PartitionData> Partitions { get; } = new(StringComparer.Ordinal);

    public ColumnDef Column(string name) =>
        ByName.TryGetValue(name, out var c) ? c : throw CqlException.Invalid($"Undefined column name {name}");

    /// <summary>Clustering order: column by column, each by its type's order, reversed for DESC columns.</summary>
    public int CompareClustering(byte[][] a, byte[][] b)
    {
        for (var i = 0; i < Clustering.Count; i++)
        {
            var c = Clustering[i].Type.Compare(a[i], b[i]);
            if (c != 0)
            {
                return Clustering[i].Descending ? -c : c;
            }
        }

        return 0;
    }

    public PartitionData GetOrAddPartition(byte[][] key)
    {
        var routing = Murmur3Token.RoutingKey(key);
        var id = Convert.ToHexString(routing);
        if (!Partitions.TryGetValue(id, out var p))
        {
            p = new PartitionData(key, routing, Murmur3Token.Token(routing));
            Partitions[id] = p;
        }

        return p;
    }

    public PartitionData? FindPartition(byte[][] key) =>
        Partitions.GetValueOrDefault(Convert.ToHexString(Murmur3Token.RoutingKey(key)));

    public IEnumerable<PartitionData> PartitionsInTokenOrder() =>
        Partitions.Values.OrderBy(p => p.Token).ThenBy(p => Convert.ToHexString(p.RoutingKey), StringComparer.Ordinal);
}

/// <summary>One cell version: a value (null: a tombstone), its write timestamp (µs) and optional expiry.</summary>
internal sealed record Cell(byte[]? Value, long Timestamp, long ExpiresAtMs, int Ttl)
{
    public bool IsLive(long nowMs) => Value is not null && (ExpiresAtMs == 0 || nowMs < ExpiresAtMs);

    /// <summary>
    /// Last write wins by timestamp; on a tie a tombstone wins, then the greater value, then the later expiry — the way
    /// Cassandra reconciles, so that replicas converge whatever the arrival order.
    /// </summary>
    public static Cell Reconcile(Cell? existing, Cell incoming)
    {
        if (existing is null || incoming.Timestamp > existing.Timestamp)
        {
            return incoming;
        }

        if (incoming.Timestamp < existing.Timestamp)
        {
            return existing;
        }

        if (existing.Value is null || incoming.Value is null)
        {
            return existing.Value is null ? existing : incoming;
        }

        var byValue = incoming.Value.AsSpan().SequenceCompareTo(existing.Value);
        if (byValue != 0)
        {
            return byValue > 0 ? incoming : existing;
        }

        return incoming.ExpiresAtMs == 0 || (existing.ExpiresAtMs != 0 && incoming.ExpiresAtMs > existing.ExpiresAtMs)
            ? incoming
            : existing;
    }
}

internal sealed class RowData(byte[][] clustering)
{
    public byte[][] Clustering { get; } = clustering;

    /// <summary>The row marker INSERT writes (its value is empty): it keeps the row alive without any live cell.</summary>
    public Cell? Marker { get; set; }

    public long DeletedAt { get; set; } = long.MinValue;

    public Dictionary<string, Cell> Cells { get; } = new(StringComparer.Ordinal);
}

/// <summary>A restriction on clustering columns (per column: equal to one of, and/or bounded), for reads and range deletes.</summary>
internal sealed class ClusteringFilter
{
    public sealed class Constraint
    {
        public List<byte[]>? OneOf { get; set; }

        public byte[]? Lower { get; set; }

        public bool LowerInclusive { get; set; }

        public byte[]? Upper { get; set; }

        public bool UpperInclusive { get; set; }
    }

    public Dictionary<int, Constraint> Columns { get; } = [];

    public bool IsEmpty => Columns.Count == 0;

    public bool Matches(TableDef table, byte[][] clustering)
    {
        foreach (var (index, c) in Columns)
        {
            var type = table.Clustering[index].Type;
            var v = clustering[index];
            if (c.OneOf is not null && !c.OneOf.Any(x => type.Compare(x, v) == 0))
            {
                return false;
            }

            if (c.Lower is not null)
            {
                var cmp = type.Compare(v, c.Lower);
                if (cmp < 0 || (cmp == 0 && !c.LowerInclusive))
                {
                    return false;
                }
            }

            if (c.Upper is not null)
            {
                var cmp = type.Compare(v, c.Upper);
                if (cmp > 0 || (cmp == 0 && !c.UpperInclusive))
                {
                    return false;
                }
            }
        }

        return true;
    }
}

internal sealed record RangeTombstone(ClusteringFilter Filter, long Timestamp);

internal sealed class PartitionData(byte[][] key, byte[] routingKey, long token)
{
    public byte[][] Key { get; } = key;

    public byte[] RoutingKey { get; } = routingKey;

    public long Token { get; } = token;

    public long DeletedAt { get; set; } = long.MinValue;

    public List<RangeTombstone> RangeTombstones { get; } = [];

    /// <summary>Rows kept in clustering order.</summary>
    public List<RowData> Rows { get; } = [];

    public RowData GetOrAddRow(TableDef table, byte[][] clustering)
    {
        var index = Find(table, clustering);
        if (index >= 0)
        {
            return Rows[index];
        }

        var row = new RowData(clustering);
        Rows.Insert(~index, row);
        return row;
    }

    public RowData? FindRow(TableDef table, byte[][] clustering)
    {
        var index = Find(table, clustering);
        return index >= 0 ? Rows[index] : null;
    }

    private int Find(TableDef table, byte[][] clustering)
    {
        int lo = 0, hi = Rows.Count - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) / 2;
            var c = table.CompareClustering(Rows[mid].Clustering, clustering);
            if (c == 0)
            {
                return mid;
            }

            if (c < 0)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return ~lo;
    }

    /// <summary>The newest deletion that covers a row: partition, range or row tombstone (data at or before it is dead).</summary>
    public long DeletionFor(TableDef table, RowData row)
    {
        var deleted = Math.Max(DeletedAt, row.DeletedAt);
        foreach (var rt in RangeTombstones)
        {
            if (rt.Timestamp > deleted && rt.Filter.Matches(table, row.Clustering))
            {
                deleted = rt.Timestamp;
            }
        }

        return deleted;
    }

    /// <summary>The live cell of a column, or null when absent, deleted, shadowed or expired.</summary>
    public static Cell? LiveCell(RowData row, string column, long deletedAt, long nowMs) =>
        row.Cells.TryGetValue(column, out var cell) && cell.Timestamp > deletedAt && cell.IsLive(nowMs) ? cell : null;

    /// <summary>A row exists while its marker or any of its cells is live.</summary>
    public bool IsRowLive(TableDef table, RowData row, long nowMs)
    {
        var deleted = DeletionFor(table, row);
        if (row.Marker is { } m && m.Timestamp > deleted && m.IsLive(nowMs))
        {
            return true;
        }

        foreach (var cell in row.Cells.Values)
        {
            if (cell.Timestamp > deleted && cell.IsLive(nowMs))
            {
                return true;
            }
        }

        return false;
    }
}
