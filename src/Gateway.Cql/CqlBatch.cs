namespace Gateway.Cql;

/// <summary>Statements sent as one BATCH request (spec §4.1.7): prepared or plain, each with its values.</summary>
public sealed class CqlBatch(CqlBatchType type = CqlBatchType.Logged)
{
    private readonly List<(CqlPrepared? Prepared, string? Query, CqlValue[] Values)> _statements = [];

    /// <summary>Logged, unlogged or counter.</summary>
    public CqlBatchType Type { get; } = type;

    /// <summary>How many statements the batch holds.</summary>
    public int Count => _statements.Count;

    /// <summary>The statements in order.</summary>
    public IReadOnlyList<(CqlPrepared? Prepared, string? Query, CqlValue[] Values)> Statements => _statements;

    /// <summary>Adds a prepared statement with its values (in marker order).</summary>
    public CqlBatch Add(CqlPrepared prepared, params CqlValue[] values)
    {
        ArgumentNullException.ThrowIfNull(prepared);
        _statements.Add((prepared, null, values ?? []));
        return this;
    }

    /// <summary>Adds a plain statement with its values.</summary>
    public CqlBatch Add(string query, params CqlValue[] values)
    {
        ArgumentException.ThrowIfNullOrEmpty(query);
        _statements.Add((null, query, values ?? []));
        return this;
    }

    /// <summary>Empties the batch so it can be filled again.</summary>
    public void Clear() => _statements.Clear();
}
