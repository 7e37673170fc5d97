namespace Gateway.Cql;

/// <summary>The kinds of RESULT (spec §4.2.5).</summary>
public enum CqlResultKind
{
    /// <summary>No result (a write, a USE without a keyspace change).</summary>
    Void = 0x0001,

    /// <summary>Rows, with their metadata.</summary>
    Rows = 0x0002,

    /// <summary>The keyspace a USE switched to.</summary>
    SetKeyspace = 0x0003,

    /// <summary>A prepared statement's id and metadata.</summary>
    Prepared = 0x0004,

    /// <summary>A schema change a DDL statement made.</summary>
    SchemaChange = 0x0005,
}

/// <summary>A RESULT response. Dispose it when done with <see cref="Rows"/>: the rows live in a pooled buffer.</summary>
public sealed class CqlResult : IDisposable
{
    /// <summary>Creates a result.</summary>
    public CqlResult(CqlResultKind kind, CqlRows? rows = null, string? keyspace = null, CqlSchemaChange? schemaChange = null, IReadOnlyList<string>? warnings = null, Guid? tracingId = null, IReadOnlyDictionary<string, byte[]>? customPayload = null)
    {
        Kind = kind;
        Rows = rows;
        Keyspace = keyspace;
        SchemaChange = schemaChange;
        Warnings = warnings ?? [];
        TracingId = tracingId;
        CustomPayload = customPayload;
    }

    /// <summary>What kind of result this is.</summary>
    public CqlResultKind Kind { get; }

    /// <summary>The rows of a Rows result.</summary>
    public CqlRows? Rows { get; }

    /// <summary>The keyspace of a SetKeyspace result.</summary>
    public string? Keyspace { get; }

    /// <summary>What changed, for a SchemaChange result.</summary>
    public CqlSchemaChange? SchemaChange { get; }

    /// <summary>Warnings the server attached (response flag 0x08), e.g. a batch over the size warning threshold.</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>The tracing session id when tracing was asked for (response flag 0x02).</summary>
    public Guid? TracingId { get; }

    /// <summary>The custom payload (response flag 0x04), when the server sent one.</summary>
    public IReadOnlyDictionary<string, byte[]>? CustomPayload { get; }

    /// <summary>For a conditional statement: whether it was applied (the <c>[applied]</c> column of its single row).</summary>
    public bool Applied => Rows is not { Count: > 0 } rows || rows.GetBoolean(0, 0);

    /// <summary>Returns the rows' buffer to the pool.</summary>
    public void Dispose() => Rows?.Dispose();
}

/// <summary>A SCHEMA_CHANGE result or event (spec §4.2.6).</summary>
/// <param name="ChangeType">CREATED, UPDATED or DROPPED.</param>
/// <param name="Target">KEYSPACE, TABLE, TYPE, FUNCTION or AGGREGATE.</param>
/// <param name="Keyspace">The keyspace.</param>
/// <param name="Name">The table, type, function or aggregate (null for a keyspace).</param>
/// <param name="ArgumentTypes">The argument types of a function or aggregate.</param>
public sealed record CqlSchemaChange(string ChangeType, string Target, string Keyspace, string? Name, IReadOnlyList<string>? ArgumentTypes);
