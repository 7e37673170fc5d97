namespace Gateway.Cql;

/// <summary>Per-request settings (the flags of &lt;query_parameters&gt;, spec §4.1.4, and client-side policy).</summary>
public readonly record struct CqlStatementOptions
{
    /// <summary>The consistency; null: <see cref="CqlClusterOptions.DefaultConsistency"/>.</summary>
    public CqlConsistency? Consistency { get; init; }

    /// <summary>The serial consistency of a conditional (IF …) statement; null: <see cref="CqlClusterOptions.DefaultSerialConsistency"/>.</summary>
    public CqlConsistency? SerialConsistency { get; init; }

    /// <summary>Rows per page of a SELECT; 0: <see cref="CqlClusterOptions.DefaultPageSize"/>.</summary>
    public int PageSize { get; init; }

    /// <summary>Where the previous page ended (<see cref="CqlRows.PagingState"/>); empty: the first page.</summary>
    public ReadOnlyMemory<byte> PagingState { get; init; }

    /// <summary>The write timestamp (microseconds) the server uses instead of its clock; null: the server's.</summary>
    public long? DefaultTimestamp { get; init; }

    /// <summary>True when running the statement twice has the same effect as once: only then are timeouts, Unavailable
    /// and a connection lost mid-request retried (on the next host).</summary>
    public bool Idempotent { get; init; }

    /// <summary>Overrides <see cref="CqlClusterOptions.RequestTimeout"/> for this request.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Asks the server to trace the request (the result then carries a tracing id).</summary>
    public bool Tracing { get; init; }
}
