using System.Buffers.Binary;

namespace Gateway.Cql.TestPeer;

/// <summary>A statement with its bound values, as it comes in a QUERY, an EXECUTE or one entry of a BATCH.</summary>
internal sealed record BoundStatement(Statement Statement, BoundValue[] Values);

/// <summary>Executes parsed statements against the shared <see cref="Database"/> with Cassandra's write semantics.</summary>
internal sealed partial class Engine(Database db)
{
    private const int MaxTtl = 630720000;

    public Database Db { get; } = db;

    public ResultMessage Execute(BoundStatement bound, ExecContext ctx)
    {
        CheckValueCount(bound);
        lock (Db.Sync)
        {
            return bound.Statement switch
            {
                SelectStatement s => Select(s, bound.Values, ctx),
                InsertStatement or UpdateStatement or DeleteStatement => ExecuteWrites([bound], ctx, null),
                TextBatchStatement b => ExecuteWrites(
                    [.. b.Statements.Select(s => bound with { Statement = s })], ctx,
                    b.Timestamp is null ? null : Timestamp(b.Timestamp, bound.Values)),
                CreateKeyspaceStatement s => CreateKeyspace(s),
                CreateTableStatement s => CreateTable(s, ctx),
                DropStatement s => Drop(s, ctx),
                TruncateStatement s => Truncate(s, ctx),
                UseStatement s => Use(s),
                _ => throw CqlException.Invalid("unsupported statement"),
            };
        }
    }

    public ResultMessage ExecuteBatch(IReadOnlyList<BoundStatement> statements, ExecContext ctx)
    {
        foreach (var s in statements)
        {
            CheckValueCount(s);
            if (s.Statement is not (InsertStatement or UpdateStatement or DeleteStatement))
            {
                throw CqlException.Invalid("Only INSERT, UPDATE and DELETE statements are allowed in a batch");
            }
        }

        lock (Db.Sync)
        {
            return ExecuteWrites(statements, ctx, null);
        }
    }

    private static void CheckValueCount(BoundStatement bound)
    {
        if (bound.Values.Length != bound.Statement.Markers.Count)
        {
            throw CqlException.Invalid(
                $"There were {bound.Statement.Markers.Count} markers(?) in CQL but {bound.Values.Length} bound variables");
        }
    }

    // ---- schema ----

    public TableDef ResolveTable(TableRef r, string? currentKeyspace, ExecContext? ctx)
    {
        var ks = r.Keyspace ?? currentKeyspace
                 ?? throw CqlException.Invalid(
                     "No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename");
        if (ks is "system" or "system_schema")
        {
            return SystemTable(ks, r.Table, ctx) ?? throw CqlException.Invalid($"unconfigured table {r.Table}");
        }

        if (!Db.Keyspaces.TryGetValue(ks, out var keyspace))
        {
            throw CqlException.Invalid($"Keyspace {ks} does not exist");
        }

        return keyspace.Tables.TryGetValue(r.Table, out var t) ? t : throw CqlException.Invalid($"unconfigured table {r.Table}");
    }

    private SchemaChangeResult Changed(string change, string target, string ks, string? name)
    {
        Db.SchemaVersion = Guid.NewGuid();
        return new SchemaChangeResult(change, target, ks, name);
    }

    private ResultMessage CreateKeyspace(CreateKeyspaceStatement s)
    {
        if (s.Name is "system" or "system_schema" || Db.Keyspaces.ContainsKey(s.Name))
        {
            return s.IfNotExists
                ? new VoidResult()
                : throw CqlException.AlreadyExists(s.Name, "", $"Cannot add existing keyspace \"{s.Name}\"");
        }

        Db.Keyspaces[s.Name] = new KeyspaceDef(s.Name, s.Replication, s.DurableWrites);
        return Changed("CREATED", "KEYSPACE", s.Name, null);
    }

    private ResultMessage CreateTable(CreateTableStatement s, ExecContext ctx)
    {
        var ksName = s.Table.Keyspace ?? ctx.Keyspace
                     ?? throw CqlException.Invalid("No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename");
        if (!Db.Keyspaces.TryGetValue(ksName, out var ks))
        {
            throw CqlException.Invalid($"Keyspace {ksName} does not exist");
        }

        if (ks.Tables.ContainsKey(s.Table.Table))
        {
            return s.IfNotExists
                ? new VoidResult()
                : throw CqlException.AlreadyExists(ksName, s.Table.Table,
                    $"Cannot add already existing table \"{s.Table.Table}\" to keyspace \"{ksName}\"");
        }

        var declared = new Dictionary<string, ColumnType>(StringComparer.Ordinal);
        foreach (var c in s.Columns)
        {
            if (!declared.TryAdd(c.Name, c.Type))
            {
                throw CqlException.Invalid($"Multiple definition of identifier {c.Name}");
            }
        }

        var columns = new List<ColumnDef>();
        var keyNames = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < s.PartitionKey.Count; i++)
        {
            columns.Add(KeyColumn(s.PartitionKey[i], ColumnRole.PartitionKey, i, false));
        }

        for (var i = 0; i < s.Clustering.Count; i++)
        {
            columns.Add(KeyColumn(s.Clustering[i], ColumnRole.Clustering, i, s.Descending.GetValueOrDefault(s.Clustering[i])));
        }

        foreach (var name in s.Descending.Keys)
        {
            if (!s.Clustering.Contains(name))
            {
                throw CqlException.Invalid($"Only clustering key columns can be defined in CLUSTERING ORDER directive: {name}");
            }
        }

        foreach (var c in s.Columns.Where(c => !keyNames.Contains(c.Name)))
        {
            columns.Add(new ColumnDef(c.Name, c.Type, ColumnRole.Regular, 0, false));
        }

        ks.Tables[s.Table.Table] = new TableDef(ksName, s.Table.Table, columns, s.DefaultTtl);
        return Changed("CREATED", "TABLE", ksName, s.Table.Table);

        ColumnDef KeyColumn(string name, ColumnRole role, int position, bool desc)
        {
            if (!declared.TryGetValue(name, out var type))
            {
                throw CqlException.Invalid($"Unknown definition {name} referenced in PRIMARY KEY");
            }

            if (type.IsCollection)
            {
                throw CqlException.Invalid($"Invalid non-frozen collection type for PRIMARY KEY component {name}");
            }

            if (!keyNames.Add(name))
            {
                throw CqlException.Invalid($"Duplicate definition for {name} in PRIMARY KEY");
            }

            return new ColumnDef(name, type, role, position, desc);
        }
    }

    private ResultMessage Drop(DropStatement s, ExecContext ctx)
    {
        if (s.Keyspace)
        {
            var name = s.Target.Keyspace!;
            if (!Db.Keyspaces.Remove(name))
            {
                return s.IfExists ? new VoidResult() : throw CqlException.Invalid($"Cannot drop non existing keyspace '{name}'.");
            }

            return Changed("DROPPED", "KEYSPACE", name, null);
        }

        var ksName = s.Target.Keyspace ?? ctx.Keyspace
                     ?? throw CqlException.Invalid("No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename");
        if (!Db.Keyspaces.TryGetValue(ksName, out var ks) || !ks.Tables.Remove(s.Target.Table))
        {
            return s.IfExists ? new VoidResult() : throw CqlException.Invalid($"Table '{ksName}.{s.Target.Table}' doesn't exist");
        }

        return Changed("DROPPED", "TABLE", ksName, s.Target.Table);
    }

    private VoidResult Truncate(TruncateStatement s, ExecContext ctx)
    {
        ResolveTable(s.Table, ctx.Keyspace, null).Partitions.Clear();
        return new VoidResult();
    }

    private SetKeyspaceResult Use(UseStatement s) =>
        s.Keyspace is "system" or "system_schema" || Db.Keyspaces.ContainsKey(s.Keyspace)
            ? new SetKeyspaceResult(s.Keyspace)
            : throw CqlException.Invalid($"Keyspace '{s.Keyspace}' does not exist");

    // ---- binding ----

    /// <summary>The value of a term for a receiver of the given type: literals converted, markers validated.</summary>
    public static BoundValue Bind(Term term, ColumnType type, string column, BoundValue[] values)
    {
        switch (term)
        {
            case NullTerm:
                return BoundValue.Null;
            case LiteralTerm l:
                return new BoundValue(type.FromLiteral(l.Value, column), false);
            case MarkerTerm m:
                var v = values[m.Index];
                if (v.Bytes is not null)
                {
                    type.Validate(v.Bytes, column);
                    return new BoundValue(type.Canonical(v.Bytes, column), false);
                }

                return v;
            case CollectionTerm c:
                if (!type.IsCollection || (type.Kind == TypeKind.Map) != (c.Values is not null || (c.Items.Count == 0 && c.Bracket == '{'))
                    || (type.Kind == TypeKind.List) != (c.Bracket == '['))
                {
                    throw CqlException.Invalid($"Invalid collection literal for {column} of type {type}");
                }

                var items = new List<(byte[], byte[]?)>();
                for (var i = 0; i < c.Items.Count; i++)
                {
                    var key = Bind(c.Items[i], type.Element!, column, values).Bytes
                              ?? throw CqlException.Invalid($"null is not supported inside collections ({column})");
                    byte[]? value = null;
                    if (c.Values is not null)
                    {
                        value = Bind(c.Values[i], type.Value!, column, values).Bytes
                                ?? throw CqlException.Invalid($"null is not supported inside collections ({column})");
                    }

                    items.Add((key, value));
                }

                return new BoundValue(type.Canonical(ColumnType.EncodeCollection(items), column), false);
            default:
                throw CqlException.Invalid("unsupported term");
        }
    }

    private static long Timestamp(Term term, BoundValue[] values)
    {
        var v = Bind(term, ColumnType.BigintType, "[timestamp]", values);
        if (v.Bytes is not { Length: 8 })
        {
            throw CqlException.Invalid("Invalid null value of timestamp");
        }

        return BinaryPrimitives.ReadInt64BigEndian(v.Bytes);
    }

    private static int Int(Term term, BoundValue[] values, string name)
    {
        var v = Bind(term, ColumnType.IntType, name, values);
        if (v.Bytes is not { Length: 4 })
        {
            throw CqlException.Invalid($"Invalid null value of {name}");
        }

        return BinaryPrimitives.ReadInt32BigEndian(v.Bytes);
    }

    /// <summary>The values a relation restricts its column to (IN: several; an IN marker binds a whole list).</summary>
    private static List<byte[]> RelationValues(Relation r, ColumnDef column, BoundValue[] values)
    {
        if (r.Op == RelationOp.In && r.Terms is [MarkerTerm { Role: MarkerRole.InList } m])
        {
            var list = values[m.Index].Bytes ?? throw CqlException.Invalid($"Invalid null value for IN restriction on {column.Name}");
            var listType = new ColumnType(TypeKind.List, column.Type);
            listType.Validate(list, column.Name);
            return [.. listType.DecodeCollection(list, column.Name).Select(x => x.Key)];
        }

        var result = new List<byte[]>();
        foreach (var t in r.Terms)
        {
            var v = Bind(t, column.Type, column.Name, values);
            if (v.IsUnset)
            {
                throw CqlException.Invalid($"Invalid unset value for column {column.Name}");
            }

            result.Add(v.Bytes ?? throw CqlException.Invalid($"Invalid null value in condition for column {column.Name}"));
        }

        return result;
    }

    /// <summary>The WHERE clause split into partition key values, a clustering filter and any other column filters.</summary>
    private sealed class Where
    {
        public List<List<byte[]>?> PartitionKey { get; } = [];

        public ClusteringFilter Clustering { get; } = new();

        public List<(ColumnDef Column, RelationOp Op, List<byte[]> Values)> Others { get; } = [];

        public bool HasPartitionKey => PartitionKey.All(p => p is not null);

        public byte[][]? FullClustering(TableDef t)
        {
            var result = new byte[t.Clustering.Count][];
            for (var i = 0; i < result.Length; i++)
            {
                if (!Clustering.Columns.TryGetValue(i, out var c) || c.OneOf is not [var single] || c.Lower is not null || c.Upper is not null)
                {
                    return null;
                }

                result[i] = single;
            }

            return result;
        }
    }

    private static Where AnalyzeWhere(TableDef t, List<Relation> relations, BoundValue[] values)
    {
        var w = new Where();
        for (var i = 0; i < t.PartitionKey.Count; i++)
        {
            w.PartitionKey.Add(null);
        }

        foreach (var r in relations)
        {
            var column = t.Column(r.Column);
            var vals = RelationValues(r, column, values);
            switch (column.Role)
            {
                case ColumnRole.PartitionKey when r.Op is RelationOp.Eq or RelationOp.In:
                    if (w.PartitionKey[column.Position] is not null)
                    {
                        throw CqlException.Invalid($"{column.Name} cannot be restricted by more than one relation if it includes an Equal");
                    }

                    w.PartitionKey[column.Position] = vals;
                    break;
                case ColumnRole.PartitionKey:
                    throw CqlException.Invalid(
                        $"Only EQ and IN relation are supported on the partition key (unless you use the token() function)");
                case ColumnRole.Clustering:
                    if (!w.Clustering.Columns.TryGetValue(column.Position, out var c))
                    {
                        c = new ClusteringFilter.Constraint();
                        w.Clustering.Columns[column.Position] = c;
                    }

                    switch (r.Op)
                    {
                        case RelationOp.Eq or RelationOp.In:
                            c.OneOf = vals;
                            break;
                        case RelationOp.Gt or RelationOp.Ge:
                            c.Lower = vals[0];
                            c.LowerInclusive = r.Op == RelationOp.Ge;
                            break;
                        case RelationOp.Lt or RelationOp.Le:
                            c.Upper = vals[0];
                            c.UpperInclusive = r.Op == RelationOp.Le;
                            break;
                        default:
                            throw CqlException.Invalid($"Unsupported \"!=\" relation: {r.Column} != ...");
                    }

                    break;
                default:
                    w.Others.Add((column, r.Op, vals));
                    break;
            }
        }

        return w;
    }

    private static byte[][] SinglePartitionKey(TableDef t, Where w)
    {
        var key = new byte[t.PartitionKey.Count][];
        for (var i = 0; i < key.Length; i++)
        {
            if (w.PartitionKey[i] is not [var single])
            {
                throw CqlException.Invalid(w.PartitionKey[i] is null
                    ? $"Some partition key parts are missing: {t.PartitionKey[i].Name}"
                    : $"IN on the partition key is not supported here ({t.PartitionKey[i].Name})");
            }

            key[i] = single;
        }

        return key;
    }

    private static List<byte[][]> PartitionKeys(TableDef t, Where w)
    {
        var keys = new List<byte[][]> { Array.Empty<byte[]>() };
        foreach (var values in w.PartitionKey)
        {
            keys = [.. keys.SelectMany(prefix => values!.Select(v => (byte[][])[.. prefix, v]))];
        }

        // IN lists may repeat a key; each partition is read once.
        return [.. keys.DistinctBy(k => Convert.ToHexString(Murmur3Token.RoutingKey(k)))];
    }
}
