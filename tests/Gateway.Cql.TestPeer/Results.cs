namespace Gateway.Cql.TestPeer;

internal sealed record ColumnSpec(string Keyspace, string Table, string Name, ColumnType Type);

/// <summary>The outcome of executing one statement, written as a RESULT body.</summary>
internal abstract record ResultMessage
{
    public abstract void Write(WireWriter w, bool skipMetadata);

    public static void WriteSpecs(WireWriter w, IReadOnlyList<ColumnSpec> columns, int flags, byte[]? pagingState, bool skipMetadata)
    {
        var global = columns.Count > 0 && columns.All(c => c.Keyspace == columns[0].Keyspace && c.Table == columns[0].Table);
        if (global)
        {
            flags |= 0x0001;
        }

        if (pagingState is not null)
        {
            flags |= 0x0002;
        }

        if (skipMetadata)
        {
            flags = (flags & ~0x0001) | 0x0004;
        }

        w.WriteInt(flags);
        w.WriteInt(columns.Count);
        if (pagingState is not null)
        {
            w.WriteBytes(pagingState);
        }

        if (skipMetadata)
        {
            return;
        }

        if (global)
        {
            w.WriteString(columns[0].Keyspace);
            w.WriteString(columns[0].Table);
        }

        foreach (var c in columns)
        {
            if (!global)
            {
                w.WriteString(c.Keyspace);
                w.WriteString(c.Table);
            }

            w.WriteString(c.Name);
            c.Type.WriteOption(w);
        }
    }
}

internal sealed record VoidResult : ResultMessage
{
    public override void Write(WireWriter w, bool skipMetadata) => w.WriteInt(0x0001);
}

internal sealed record RowsResult(List<ColumnSpec> Columns, List<byte[]?[]> Rows, byte[]? PagingState) : ResultMessage
{
    public override void Write(WireWriter w, bool skipMetadata)
    {
        w.WriteInt(0x0002);
        WriteSpecs(w, Columns, 0, PagingState, skipMetadata);
        w.WriteInt(Rows.Count);
        foreach (var row in Rows)
        {
            foreach (var value in row)
            {
                w.WriteBytes(value);
            }
        }
    }
}

internal sealed record SetKeyspaceResult(string Keyspace) : ResultMessage
{
    public override void Write(WireWriter w, bool skipMetadata)
    {
        w.WriteInt(0x0003);
        w.WriteString(Keyspace);
    }
}

/// <summary>A schema change: also the body of the SCHEMA_CHANGE event pushed to registered connections.</summary>
internal sealed record SchemaChangeResult(string Change, string Target, string Keyspace, string? Name) : ResultMessage
{
    public override void Write(WireWriter w, bool skipMetadata)
    {
        w.WriteInt(0x0005);
        WriteChange(w);
    }

    public void WriteChange(WireWriter w)
    {
        w.WriteString(Change);
        w.WriteString(Target);
        w.WriteString(Keyspace);
        if (Name is not null)
        {
            w.WriteString(Name);
        }
    }
}
