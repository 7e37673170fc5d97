namespace Gateway.Cql;

/// <summary>A statement prepared on the cluster (RESULT Prepared, spec §4.2.5.4).</summary>
/// <remarks>The client prepares it again by itself where a node answers Unprepared (restart, cache eviction) and
/// retries once; callers keep one instance per statement text for the life of the cluster.</remarks>
public sealed class CqlPrepared
{
    /// <summary>Creates the description of a prepared statement.</summary>
    public CqlPrepared(string query, ReadOnlyMemory<byte> id, IReadOnlyList<CqlColumn> variables, IReadOnlyList<int> partitionKeyIndexes, IReadOnlyList<CqlColumn> resultColumns)
    {
        Query = query;
        Id = id;
        Variables = variables;
        PartitionKeyIndexes = partitionKeyIndexes;
        ResultColumns = resultColumns;
    }

    /// <summary>The statement text.</summary>
    public string Query { get; }

    /// <summary>The server's id of the statement (an MD5 of the text and keyspace on Cassandra and Scylla).</summary>
    public ReadOnlyMemory<byte> Id { get; }

    /// <summary>The bind markers in order, with their types.</summary>
    public IReadOnlyList<CqlColumn> Variables { get; }

    /// <summary>The indexes of <see cref="Variables"/> that make the partition key, in partition key order (used to
    /// compute the token for routing); empty when the statement does not bind the whole partition key.</summary>
    public IReadOnlyList<int> PartitionKeyIndexes { get; }

    /// <summary>The columns of the rows the statement returns (empty for writes).</summary>
    public IReadOnlyList<CqlColumn> ResultColumns { get; }
}
