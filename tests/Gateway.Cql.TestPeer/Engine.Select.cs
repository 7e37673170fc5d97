using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Gateway.Cql.TestPeer;

internal sealed partial class Engine
{
    private static readonly byte[] PagingMagic = "TPPG"u8.ToArray();

    private RowsResult Select(SelectStatement s, BoundValue[] values, ExecContext ctx)
    {
        var t = ResolveTable(s.Table, ctx.Keyspace, ctx);
        var nowMs = Database.NowMs;
        var w = AnalyzeWhere(t, s.Where, values);
        var anyPk = w.PartitionKey.Any(p => p is not null);
        if (anyPk && !w.HasPartitionKey)
        {
            var missing = t.PartitionKey.Where(c => w.PartitionKey[c.Position] is null).Select(c => c.Name);
            throw CqlException.Invalid($"Partition key parts: {string.Join(", ", missing)} must be restricted as other parts are");
        }

        if (((!anyPk && !w.Clustering.IsEmpty) || w.Others.Count > 0) && !s.AllowFiltering)
        {
            throw CqlException.Invalid(
                "Cannot execute this query as it might involve data filtering and thus may have unpredictable performance. " +
                "If you want to execute this query despite the performance unpredictability, use ALLOW FILTERING");
        }

        IEnumerable<PartitionData> partitions;
        if (anyPk)
        {
            var keys = PartitionKeys(t, w);
            if (keys.Count == 1)
            {
                ctx.Token = Murmur3Token.Token(keys[0]);
            }

            partitions = keys.Select(t.FindPartition).OfType<PartitionData>();
        }
        else
        {
            partitions = t.PartitionsInTokenOrder();
        }

        var reverse = false;
        if (s.OrderBy.Count > 0)
        {
            if (!anyPk)
            {
                throw CqlException.Invalid("ORDER BY is only supported when the partition key is restricted by an EQ or an IN.");
            }

            var first = t.Column(s.OrderBy[0].Column);
            foreach (var (name, desc) in s.OrderBy)
            {
                var c = t.Column(name);
                if (c.Role != ColumnRole.Clustering)
                {
                    throw CqlException.Invalid($"Order by is currently only supported on the clustered columns of the PRIMARY KEY, got {name}");
                }

                if ((desc != c.Descending) != (s.OrderBy[0].Descending != first.Descending))
                {
                    throw CqlException.Invalid("Unsupported order by relation");
                }
            }

            reverse = s.OrderBy[0].Descending != first.Descending;
        }

        var matches = new List<(PartitionData P, RowData Row, long DeletedAt)>();
        foreach (var p in partitions)
        {
            var rows = new List<(PartitionData, RowData, long)>();
            foreach (var row in p.Rows)
            {
                if (!w.Clustering.Matches(t, row.Clustering) || !p.IsRowLive(t, row, nowMs))
                {
                    continue;
                }

                var deletedAt = p.DeletionFor(t, row);
                if (w.Others.All(o => Holds(o.Column.Type, ValueOf(t, p, row, o.Column, deletedAt, nowMs), o.Op, [.. o.Values])))
                {
                    rows.Add((p, row, deletedAt));
                }
            }

            if (reverse)
            {
                rows.Reverse();
            }

            matches.AddRange(rows);
        }

        var limit = int.MaxValue;
        if (s.Limit is not null)
        {
            limit = Int(s.Limit, values, "[limit]");
            if (limit <= 0)
            {
                throw CqlException.Invalid("LIMIT must be strictly positive");
            }
        }

        var selectors = s.Selectors ?? [.. t.Columns.Select(c => new Selector(SelectorKind.Column, c.Name, null))];
        var specs = selectors.Select(sel => SelectorSpec(t, sel)).ToList();
        if (selectors.Any(sel => sel.Kind == SelectorKind.CountAll))
        {
            if (selectors.Count != 1)
            {
                throw CqlException.Invalid("COUNT(*) cannot be mixed with other selectors in the test peer");
            }

            return new RowsResult(specs, [[ColumnType.Long(Math.Min(matches.Count, limit))]], null);
        }

        var all = matches.Take(limit).ToList();
        var offset = DecodePagingState(ctx.PagingState);
        var page = ctx.PageSize > 0 ? all.Skip(offset).Take(ctx.PageSize).ToList() : all.Skip(offset).ToList();
        var next = offset + page.Count < all.Count ? EncodePagingState(offset + page.Count) : null;
        var rowsOut = page.Select(m => selectors.Select(sel => SelectorValue(t, m.P, m.Row, m.DeletedAt, sel, nowMs)).ToArray()).ToList();
        return new RowsResult(specs, rowsOut, next);
    }

    public static ColumnSpec SelectorSpec(TableDef t, Selector sel)
    {
        switch (sel.Kind)
        {
            case SelectorKind.CountAll:
                return new ColumnSpec(t.Keyspace, t.Name, sel.Alias ?? "count", ColumnType.BigintType);
            case SelectorKind.Column:
                var c = t.Column(sel.Column!);
                return new ColumnSpec(t.Keyspace, t.Name, sel.Alias ?? c.Name, c.Type);
            default:
                var col = t.Column(sel.Column!);
                if (col.Role != ColumnRole.Regular)
                {
                    throw CqlException.Invalid($"Cannot use selection function {sel.Kind.ToString().ToLowerInvariant()} on PRIMARY KEY part {col.Name}");
                }

                return new ColumnSpec(t.Keyspace, t.Name, sel.Alias!,
                    sel.Kind == SelectorKind.WriteTime ? ColumnType.BigintType : ColumnType.IntType);
        }
    }

    private static byte[]? SelectorValue(TableDef t, PartitionData p, RowData row, long deletedAt, Selector sel, long nowMs)
    {
        var c = t.Column(sel.Column!);
        if (sel.Kind == SelectorKind.Column)
        {
            return ValueOf(t, p, row, c, deletedAt, nowMs);
        }

        var cell = PartitionData.LiveCell(row, c.Name, deletedAt, nowMs);
        if (cell is null)
        {
            return null;
        }

        if (sel.Kind == SelectorKind.WriteTime)
        {
            return ColumnType.Long(cell.Timestamp);
        }

        return cell.ExpiresAtMs == 0 ? null : ColumnType.Int((int)Math.Ceiling((cell.ExpiresAtMs - nowMs) / 1000.0));
    }

    /// <summary>The paging state is this peer's own: a marker and the offset of the next row in the full result.</summary>
    private static byte[] EncodePagingState(int offset)
    {
        var state = new byte[8];
        PagingMagic.CopyTo(state, 0);
        BinaryPrimitives.WriteInt32BigEndian(state.AsSpan(4), offset);
        return state;
    }

    private static int DecodePagingState(byte[]? state)
    {
        if (state is null || state.Length == 0)
        {
            return 0;
        }

        if (state.Length != 8 || !state.AsSpan(0, 4).SequenceEqual(PagingMagic) || BinaryPrimitives.ReadInt32BigEndian(state.AsSpan(4)) < 0)
        {
            throw new CqlException(CqlException.ProtocolError, "Invalid value for the paging state");
        }

        return BinaryPrimitives.ReadInt32BigEndian(state.AsSpan(4));
    }

    // ---- system tables, built for the asking node on every read ----

    private static readonly string[] SchemaTables =
        ["tables", "columns", "types", "functions", "aggregates", "triggers", "indexes", "views"];

    private TableDef? SystemTable(string ks, string name, ExecContext? ctx)
    {
        if (ctx is null)
        {
            return null;
        }

        var text = ColumnType.Text;
        if (ks == "system" && name == "local")
        {
            var t = Virtual(ks, name, [("key", text, ColumnRole.PartitionKey), ("bootstrapped", text, ColumnRole.Regular),
                ("broadcast_address", ColumnType.InetType, ColumnRole.Regular), ("cluster_name", text, ColumnRole.Regular),
                ("cql_version", text, ColumnRole.Regular), ("data_center", text, ColumnRole.Regular),
                ("host_id", ColumnType.UuidType, ColumnRole.Regular), ("listen_address", ColumnType.InetType, ColumnRole.Regular),
                ("native_protocol_version", text, ColumnRole.Regular), ("partitioner", text, ColumnRole.Regular),
                ("rack", text, ColumnRole.Regular), ("release_version", text, ColumnRole.Regular),
                ("rpc_address", ColumnType.InetType, ColumnRole.Regular), ("schema_version", ColumnType.UuidType, ColumnRole.Regular),
                ("tokens", ColumnType.TextSet, ColumnRole.Regular)]);
            var n = ctx.Local;
            AddRow(t, new()
            {
                ["key"] = Utf8("local"),
                ["bootstrapped"] = Utf8("COMPLETED"),
                ["broadcast_address"] = n.Ip.GetAddressBytes(),
                ["cluster_name"] = Utf8(Db.ClusterName),
                ["cql_version"] = Utf8("3.4.5"),
                ["data_center"] = Utf8(n.DataCenter),
                ["host_id"] = n.HostId.ToByteArray(true),
                ["listen_address"] = n.Ip.GetAddressBytes(),
                ["native_protocol_version"] = Utf8("4"),
                ["partitioner"] = Utf8("org.apache.cassandra.dht.Murmur3Partitioner"),
                ["rack"] = Utf8(n.Rack),
                ["release_version"] = Utf8("3.0.8"),
                ["rpc_address"] = n.Ip.GetAddressBytes(),
                ["schema_version"] = Db.SchemaVersion.ToByteArray(true),
                ["tokens"] = Tokens(n),
            });
            return t;
        }

        if (ks == "system" && name == "peers")
        {
            var t = Virtual(ks, name, [("peer", ColumnType.InetType, ColumnRole.PartitionKey), ("data_center", text, ColumnRole.Regular),
                ("host_id", ColumnType.UuidType, ColumnRole.Regular), ("preferred_ip", ColumnType.InetType, ColumnRole.Regular),
                ("rack", text, ColumnRole.Regular), ("release_version", text, ColumnRole.Regular),
                ("rpc_address", ColumnType.InetType, ColumnRole.Regular), ("schema_version", ColumnType.UuidType, ColumnRole.Regular),
                ("tokens", ColumnType.TextSet, ColumnRole.Regular)]);
            foreach (var n in ctx.Peers)
            {
                AddRow(t, new()
                {
                    ["peer"] = n.Ip.GetAddressBytes(),
                    ["data_center"] = Utf8(n.DataCenter),
                    ["host_id"] = n.HostId.ToByteArray(true),
                    ["preferred_ip"] = n.Ip.GetAddressBytes(),
                    ["rack"] = Utf8(n.Rack),
                    ["release_version"] = Utf8("3.0.8"),
                    ["rpc_address"] = n.Ip.GetAddressBytes(),
                    ["schema_version"] = Db.SchemaVersion.ToByteArray(true),
                    ["tokens"] = Tokens(n),
                });
            }

            return t;
        }

        if (ks == "system_schema" && name == "keyspaces")
        {
            var t = Virtual(ks, name, [("keyspace_name", text, ColumnRole.PartitionKey),
                ("durable_writes", ColumnType.BooleanType, ColumnRole.Regular), ("replication", ColumnType.TextMap, ColumnRole.Regular)]);
            var local = new Dictionary<string, string> { ["class"] = "org.apache.cassandra.locator.LocalStrategy" };
            foreach (var k in Db.Keyspaces.Values.Select(k => (k.Name, k.DurableWrites, k.Replication))
                         .Append(("system", true, local)).Append(("system_schema", true, local)))
            {
                var replication = k.Item3.Select(kv => (Utf8(kv.Key), (byte[]?)Utf8(kv.Value))).ToList();
                AddRow(t, new()
                {
                    ["keyspace_name"] = Utf8(k.Item1),
                    ["durable_writes"] = [k.Item2 ? (byte)1 : (byte)0],
                    ["replication"] = ColumnType.TextMap.Canonical(ColumnType.EncodeCollection(replication), "replication"),
                });
            }

            return t;
        }

        if (ks == "system_schema" && SchemaTables.Contains(name))
        {
            // Table and column metadata are not published: drivers then know the keyspaces (for token-aware replica
            // lookup) and take statement metadata from PREPARE results, which is all they need.
            var second = name switch
            {
                "types" => "type_name",
                "functions" => "function_name",
                "aggregates" => "aggregate_name",
                "views" => "view_name",
                _ => "table_name",
            };
            return Virtual(ks, name, [("keyspace_name", text, ColumnRole.PartitionKey), (second, text, ColumnRole.Clustering)]);
        }

        return null;
    }

    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    private static byte[] Tokens(NodeInfo n) =>
        ColumnType.TextSet.Canonical(
            ColumnType.EncodeCollection([.. n.Tokens.Select(tk => (Utf8(tk.ToString(CultureInfo.InvariantCulture)), (byte[]?)null))]),
            "tokens");

    private static TableDef Virtual(string ks, string name, (string Name, ColumnType Type, ColumnRole Role)[] columns)
    {
        var positions = new Dictionary<ColumnRole, int>();
        return new TableDef(ks, name, columns.Select(c =>
        {
            var position = positions.GetValueOrDefault(c.Role);
            positions[c.Role] = position + 1;
            return new ColumnDef(c.Name, c.Type, c.Role, position, false);
        }), 0);
    }

    private static void AddRow(TableDef t, Dictionary<string, byte[]?> values)
    {
        var p = t.GetOrAddPartition([.. t.PartitionKey.Select(c => values[c.Name]!)]);
        var row = p.GetOrAddRow(t, [.. t.Clustering.Select(c => values[c.Name]!)]);
        row.Marker = new Cell([], 1, 0, 0);
        foreach (var c in t.Regular)
        {
            if (values.TryGetValue(c.Name, out var v) && v is not null)
            {
                row.Cells[c.Name] = new Cell(v, 1, 0, 0);
            }
        }
    }
}
