namespace Gateway.Cql.TestPeer;

internal sealed partial class Engine
{
    private sealed class WritePlan
    {
        public required TableDef Table { get; init; }

        public required byte[][] PartitionKey { get; init; }

        /// <summary>The full clustering key for row-level statements; null for partition or range deletes.</summary>
        public byte[][]? Clustering { get; init; }

        public long? Timestamp { get; init; }

        public bool IfNotExists { get; init; }

        public bool IfExists { get; init; }

        public List<(ColumnDef Column, RelationOp Op, List<byte[]?> Values)> Conditions { get; init; } = [];

        public bool IsConditional => IfNotExists || IfExists || Conditions.Count > 0;

        /// <summary>Applies the write with the given timestamp (µs) at the given time (ms, for TTLs).</summary>
        public required Action<long, long> Apply { get; init; }
    }

    private ResultMessage ExecuteWrites(IReadOnlyList<BoundStatement> statements, ExecContext ctx, long? batchTimestamp)
    {
        var nowMs = Database.NowMs;
        var plans = statements.Select(s => Plan(s, ctx)).ToList();
        if (plans.Count > 0)
        {
            ctx.Token = Murmur3Token.Token(plans[0].PartitionKey);
        }

        if (statements.Count > Db.BatchWarnThreshold)
        {
            ctx.Warnings.Add(
                $"Batch of {statements.Count} statements for [{string.Join(", ", plans.Select(p => $"{p.Table.Keyspace}.{p.Table.Name}").Distinct())}] " +
                $"exceeds the warning threshold of {Db.BatchWarnThreshold} statements");
        }

        if (!plans.Any(p => p.IsConditional))
        {
            var ts = batchTimestamp ?? ctx.DefaultTimestamp ?? Db.NowMicros();
            foreach (var plan in plans)
            {
                plan.Apply(plan.Timestamp ?? ts, nowMs);
            }

            return new VoidResult();
        }

        if (plans.Any(p => p.Timestamp is not null) || batchTimestamp is not null)
        {
            throw CqlException.Invalid("Cannot provide custom timestamp for conditional updates");
        }

        var first = plans[0];
        if (plans.Any(p => p.Table != first.Table
                           || !Murmur3Token.RoutingKey(p.PartitionKey).AsSpan().SequenceEqual(Murmur3Token.RoutingKey(first.PartitionKey))))
        {
            throw CqlException.Invalid("Batch with conditions cannot span multiple tables or partitions");
        }

        foreach (var plan in plans.Where(p => p.IsConditional))
        {
            var notApplied = CheckConditions(plan, nowMs);
            if (notApplied is not null)
            {
                return notApplied;
            }
        }

        // A conditional write takes its timestamp from the node clock (the Paxos ballot, in a real cluster).
        var lwtTimestamp = Db.NowMicros();
        foreach (var plan in plans)
        {
            plan.Apply(lwtTimestamp, nowMs);
        }

        return new RowsResult([Applied(first.Table)], [[[1]]], null);
    }

    private static ColumnSpec Applied(TableDef t) => new(t.Keyspace, t.Name, "[applied]", ColumnType.BooleanType);

    /// <summary>Evaluates an LWT's conditions; null when they hold, else the not-applied result with the current values.</summary>
    private static RowsResult? CheckConditions(WritePlan plan, long nowMs)
    {
        var t = plan.Table;
        var p = t.FindPartition(plan.PartitionKey);
        var row = p?.FindRow(t, plan.Clustering!);
        var live = row is not null && p!.IsRowLive(t, row, nowMs);
        var applied = new ColumnSpec[] { Applied(t) };
        if (plan.IfNotExists)
        {
            return !live
                ? null
                : new RowsResult([.. applied, .. t.Columns.Select(c => Spec(t, c))], [[[0], .. RowValues(t, p!, row!, nowMs)]], null);
        }

        if (plan.IfExists)
        {
            return live ? null : new RowsResult([.. applied], [[[0]]], null);
        }

        var deletedAt = live ? p!.DeletionFor(t, row!) : long.MaxValue;
        var holds = plan.Conditions.All(c =>
        {
            var current = live ? ValueOf(t, p!, row!, c.Column, deletedAt, nowMs) : null;
            return Holds(c.Column.Type, current, c.Op, c.Values);
        });
        if (holds)
        {
            return null;
        }

        if (!live)
        {
            return new RowsResult([.. applied], [[[0]]], null);
        }

        var columns = plan.Conditions.Select(c => c.Column).DistinctBy(c => c.Name).ToList();
        return new RowsResult(
            [.. applied, .. columns.Select(c => Spec(t, c))],
            [[[0], .. columns.Select(c => ValueOf(t, p!, row!, c, deletedAt, nowMs))]],
            null);
    }

    private static bool Holds(ColumnType type, byte[]? current, RelationOp op, List<byte[]?> values)
    {
        bool Equal(byte[]? v) => current is null || v is null ? current is null && v is null : type.Compare(current, v) == 0;
        if (op is RelationOp.Eq or RelationOp.In)
        {
            return values.Any(Equal);
        }

        if (op == RelationOp.Ne)
        {
            return !Equal(values[0]);
        }

        if (current is null || values[0] is null)
        {
            return false;
        }

        var cmp = type.Compare(current, values[0]!);
        return op switch
        {
            RelationOp.Lt => cmp < 0,
            RelationOp.Le => cmp <= 0,
            RelationOp.Gt => cmp > 0,
            _ => cmp >= 0,
        };
    }

    private static ColumnSpec Spec(TableDef t, ColumnDef c) => new(t.Keyspace, t.Name, c.Name, c.Type);

    private static byte[]? ValueOf(TableDef t, PartitionData p, RowData row, ColumnDef c, long deletedAt, long nowMs) =>
        c.Role switch
        {
            ColumnRole.PartitionKey => p.Key[c.Position],
            ColumnRole.Clustering => row.Clustering[c.Position],
            _ => PartitionData.LiveCell(row, c.Name, deletedAt, nowMs)?.Value,
        };

    private static byte[]?[] RowValues(TableDef t, PartitionData p, RowData row, long nowMs)
    {
        var deletedAt = p.DeletionFor(t, row);
        return [.. t.Columns.Select(c => ValueOf(t, p, row, c, deletedAt, nowMs))];
    }

    private WritePlan Plan(BoundStatement bound, ExecContext ctx) => bound.Statement switch
    {
        InsertStatement s => PlanInsert(s, bound.Values, ctx),
        UpdateStatement s => PlanUpdate(s, bound.Values, ctx),
        DeleteStatement s => PlanDelete(s, bound.Values, ctx),
        _ => throw CqlException.Invalid("Only INSERT, UPDATE and DELETE statements are allowed in a batch"),
    };

    private TableDef WritableTable(TableRef r, ExecContext ctx)
    {
        var t = ResolveTable(r, ctx.Keyspace, ctx);
        return t.Keyspace is "system" or "system_schema"
            ? throw new CqlException(0x2100, $"{t.Keyspace} keyspace is not user-modifiable.")
            : t;
    }

    private static int? Ttl(Term? term, BoundValue[] values)
    {
        if (term is null)
        {
            return null;
        }

        var ttl = Int(term, values, "[ttl]");
        return ttl is < 0 or > MaxTtl
            ? throw CqlException.Invalid($"ttl is out of range: {ttl} (must be between 0 and {MaxTtl})")
            : ttl;
    }

    private static void WriteCell(RowData row, string column, byte[]? value, long ts, int ttl, long nowMs)
    {
        var cell = value is null || ttl == 0
            ? new Cell(value, ts, 0, 0)
            : new Cell(value, ts, nowMs + (ttl * 1000L), ttl);
        row.Cells[column] = Cell.Reconcile(row.Cells.GetValueOrDefault(column), cell);
    }

    private static byte[] KeyValue(ColumnDef c, BoundValue? v)
    {
        if (v is null)
        {
            throw CqlException.Invalid(c.Role == ColumnRole.PartitionKey
                ? $"Some partition key parts are missing: {c.Name}"
                : $"Some clustering keys are missing: {c.Name}");
        }

        return v.Value.Bytes ?? throw CqlException.Invalid(v.Value.IsUnset
            ? $"Invalid unset value for column {c.Name}"
            : $"Invalid null value in condition for column {c.Name}");
    }

    private WritePlan PlanInsert(InsertStatement s, BoundValue[] values, ExecContext ctx)
    {
        var t = WritableTable(s.Table, ctx);
        var assigned = new Dictionary<string, BoundValue>(StringComparer.Ordinal);
        for (var i = 0; i < s.Columns.Count; i++)
        {
            var c = t.Column(s.Columns[i]);
            if (!assigned.TryAdd(c.Name, Bind(s.Values[i], c.Type, c.Name, values)))
            {
                throw CqlException.Invalid($"Multiple definitions found for column {c.Name}");
            }
        }

        var pk = t.PartitionKey.Select(c => KeyValue(c, assigned.TryGetValue(c.Name, out var v) ? v : null)).ToArray();
        var ck = t.Clustering.Select(c => KeyValue(c, assigned.TryGetValue(c.Name, out var v) ? v : null)).ToArray();
        var ttl = Ttl(s.Ttl, values);
        return new WritePlan
        {
            Table = t,
            PartitionKey = pk,
            Clustering = ck,
            Timestamp = s.Timestamp is null ? null : Timestamp(s.Timestamp, values),
            IfNotExists = s.IfNotExists,
            Apply = (ts, nowMs) =>
            {
                var effectiveTtl = ttl ?? t.DefaultTtl;
                var row = t.GetOrAddPartition(pk).GetOrAddRow(t, ck);
                row.Marker = Cell.Reconcile(row.Marker, effectiveTtl == 0
                    ? new Cell([], ts, 0, 0)
                    : new Cell([], ts, nowMs + (effectiveTtl * 1000L), effectiveTtl));
                foreach (var c in t.Regular)
                {
                    if (assigned.TryGetValue(c.Name, out var v) && !v.IsUnset)
                    {
                        WriteCell(row, c.Name, v.Bytes, ts, effectiveTtl, nowMs);
                    }
                }
            },
        };
    }

    private (byte[][] Pk, byte[][] Ck) RowKey(TableDef t, List<Relation> relations, BoundValue[] values)
    {
        var w = AnalyzeWhere(t, relations, values);
        if (w.Others.Count > 0)
        {
            throw CqlException.Invalid($"Non PRIMARY KEY columns found in where clause: {w.Others[0].Column.Name}");
        }

        var pk = SinglePartitionKey(t, w);
        var ck = w.FullClustering(t)
                 ?? throw CqlException.Invalid(
                     $"Some clustering keys are missing: {string.Join(", ", t.Clustering.Where(c => !w.Clustering.Columns.ContainsKey(c.Position)).Select(c => c.Name))}");
        return (pk, ck);
    }

    private static List<(ColumnDef, RelationOp, List<byte[]?>)> BindConditions(TableDef t, List<Relation> conditions, BoundValue[] values) =>
    [
        .. conditions.Select(r =>
        {
            var c = t.Column(r.Column);
            if (c.Role != ColumnRole.Regular)
            {
                throw CqlException.Invalid($"PRIMARY KEY column '{c.Name}' cannot have IF conditions");
            }

            List<byte[]?> vals = r.Op == RelationOp.In && r.Terms is [MarkerTerm { Role: MarkerRole.InList }]
                ? [.. RelationValues(r, c, values)]
                : [.. r.Terms.Select(term => Bind(term, c.Type, c.Name, values).Bytes)];
            return (c, r.Op, vals);
        }),
    ];

    private WritePlan PlanUpdate(UpdateStatement s, BoundValue[] values, ExecContext ctx)
    {
        var t = WritableTable(s.Table, ctx);
        var (pk, ck) = RowKey(t, s.Where, values);
        var sets = new List<(ColumnDef Column, BoundValue Value)>();
        foreach (var (name, term) in s.Assignments)
        {
            var c = t.Column(name);
            if (c.Role != ColumnRole.Regular)
            {
                throw CqlException.Invalid($"PRIMARY KEY part {c.Name} found in SET part");
            }

            sets.Add((c, Bind(term, c.Type, c.Name, values)));
        }

        var ttl = Ttl(s.Ttl, values);
        return new WritePlan
        {
            Table = t,
            PartitionKey = pk,
            Clustering = ck,
            Timestamp = s.Timestamp is null ? null : Timestamp(s.Timestamp, values),
            IfExists = s.IfExists,
            Conditions = BindConditions(t, s.Conditions, values),
            Apply = (ts, nowMs) =>
            {
                // UPDATE writes no row marker: the row lives only as long as one of its cells does.
                var row = t.GetOrAddPartition(pk).GetOrAddRow(t, ck);
                foreach (var (c, v) in sets.Where(x => !x.Value.IsUnset))
                {
                    WriteCell(row, c.Name, v.Bytes, ts, ttl ?? t.DefaultTtl, nowMs);
                }
            },
        };
    }

    private WritePlan PlanDelete(DeleteStatement s, BoundValue[] values, ExecContext ctx)
    {
        var t = WritableTable(s.Table, ctx);
        var w = AnalyzeWhere(t, s.Where, values);
        if (w.Others.Count > 0)
        {
            throw CqlException.Invalid($"Non PRIMARY KEY columns found in where clause: {w.Others[0].Column.Name}");
        }

        var pk = SinglePartitionKey(t, w);
        var ck = w.FullClustering(t);
        var columns = s.Columns.Select(t.Column).ToList();
        if (columns.Any(c => c.Role != ColumnRole.Regular))
        {
            throw CqlException.Invalid($"Invalid identifier {columns.First(c => c.Role != ColumnRole.Regular).Name} for deletion (should not be a PRIMARY KEY part)");
        }

        var conditional = s.IfExists || s.Conditions.Count > 0;
        if ((columns.Count > 0 || conditional) && ck is null)
        {
            throw CqlException.Invalid("Range deletions and conditions need a full primary key when deleting columns or using IF");
        }

        var filter = w.Clustering;
        return new WritePlan
        {
            Table = t,
            PartitionKey = pk,
            Clustering = ck,
            Timestamp = s.Timestamp is null ? null : Timestamp(s.Timestamp, values),
            IfExists = s.IfExists,
            Conditions = BindConditions(t, s.Conditions, values),
            Apply = (ts, nowMs) =>
            {
                // Deletions are tombstones: they shadow data written at or before their timestamp, not later writes.
                var p = t.GetOrAddPartition(pk);
                if (columns.Count > 0)
                {
                    var row = p.GetOrAddRow(t, ck!);
                    foreach (var c in columns)
                    {
                        WriteCell(row, c.Name, null, ts, 0, nowMs);
                    }
                }
                else if (ck is not null)
                {
                    var row = p.GetOrAddRow(t, ck);
                    row.DeletedAt = Math.Max(row.DeletedAt, ts);
                }
                else if (filter.IsEmpty)
                {
                    p.DeletedAt = Math.Max(p.DeletedAt, ts);
                }
                else
                {
                    p.RangeTombstones.Add(new RangeTombstone(filter, ts));
                }
            },
        };
    }
}
