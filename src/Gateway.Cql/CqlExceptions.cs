namespace Gateway.Cql;

/// <summary>Error codes of an ERROR response (spec §9).</summary>
public enum CqlErrorCode
{
    /// <summary>Something unexpected happened on the node.</summary>
    ServerError = 0x0000,

    /// <summary>The request broke the protocol.</summary>
    ProtocolError = 0x000A,

    /// <summary>Authentication failed.</summary>
    BadCredentials = 0x0100,

    /// <summary>Not enough replicas alive for the consistency level.</summary>
    Unavailable = 0x1000,

    /// <summary>The coordinator is overloaded.</summary>
    Overloaded = 0x1001,

    /// <summary>The coordinator is still joining the cluster.</summary>
    IsBootstrapping = 0x1002,

    /// <summary>A TRUNCATE failed.</summary>
    TruncateError = 0x1003,

    /// <summary>Replicas did not acknowledge a write in time.</summary>
    WriteTimeout = 0x1100,

    /// <summary>Replicas did not answer a read in time.</summary>
    ReadTimeout = 0x1200,

    /// <summary>A replica failed a read.</summary>
    ReadFailure = 0x1300,

    /// <summary>A user-defined function failed.</summary>
    FunctionFailure = 0x1400,

    /// <summary>A replica failed a write.</summary>
    WriteFailure = 0x1500,

    /// <summary>The statement does not parse.</summary>
    SyntaxError = 0x2000,

    /// <summary>The user may not do this.</summary>
    Unauthorized = 0x2100,

    /// <summary>The statement is invalid (e.g. an unknown column).</summary>
    Invalid = 0x2200,

    /// <summary>The statement conflicts with the configuration.</summary>
    ConfigError = 0x2300,

    /// <summary>The keyspace or table to create exists.</summary>
    AlreadyExists = 0x2400,

    /// <summary>The node does not know the prepared statement id.</summary>
    Unprepared = 0x2500,
}

/// <summary>Anything that went wrong with a CQL request.</summary>
public class CqlException : Exception
{
    /// <summary>Creates the exception with a default message.</summary>
    public CqlException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What went wrong.</param>
    public CqlException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the exception that caused it.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="innerException">The cause.</param>
    public CqlException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>An ERROR response from a node, with the details its code carries (spec §9).</summary>
public sealed class CqlServerException : CqlException
{
    /// <summary>Creates the exception with a default message.</summary>
    public CqlServerException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What went wrong.</param>
    public CqlServerException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the exception that caused it.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="innerException">The cause.</param>
    public CqlServerException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for an ERROR with <paramref name="code"/>.</summary>
    public CqlServerException(CqlErrorCode code, string serverMessage, string? host = null)
        : base($"{code} (0x{(int)code:X4}){(host is null ? "" : $" from {host}")}: {serverMessage}")
    {
        Code = code;
        ServerMessage = serverMessage;
        Host = host;
    }

    /// <summary>The error code.</summary>
    public CqlErrorCode Code { get; init; }

    /// <summary>The message the node sent.</summary>
    public string ServerMessage { get; init; } = "";

    /// <summary>The node that answered (host:port).</summary>
    public string? Host { get; init; }

    /// <summary>Unavailable, timeouts, failures: the consistency of the request.</summary>
    public CqlConsistency? Consistency { get; init; }

    /// <summary>Unavailable: replicas required.</summary>
    public int? Required { get; init; }

    /// <summary>Unavailable: replicas known alive.</summary>
    public int? Alive { get; init; }

    /// <summary>Timeouts and failures: replicas that answered.</summary>
    public int? Received { get; init; }

    /// <summary>Timeouts and failures: replicas needed.</summary>
    public int? BlockFor { get; init; }

    /// <summary>Read/write failures: replicas that failed.</summary>
    public int? FailureCount { get; init; }

    /// <summary>Read timeouts and failures: whether the replica asked for data answered.</summary>
    public bool? DataPresent { get; init; }

    /// <summary>Write timeouts and failures: SIMPLE, BATCH, UNLOGGED_BATCH, COUNTER, BATCH_LOG, CAS, VIEW or CDC.</summary>
    public string? WriteType { get; init; }

    /// <summary>AlreadyExists and FunctionFailure: the keyspace.</summary>
    public string? Keyspace { get; init; }

    /// <summary>AlreadyExists: the table (empty for a keyspace).</summary>
    public string? Table { get; init; }

    /// <summary>FunctionFailure: the function and its argument types.</summary>
    public string? Function { get; init; }

    /// <summary>FunctionFailure: the argument types.</summary>
    public IReadOnlyList<string>? ArgumentTypes { get; init; }

    /// <summary>Unprepared: the id the node does not know.</summary>
    public ReadOnlyMemory<byte> UnpreparedId { get; init; }
}

/// <summary>No answer within the request timeout (the request may or may not have been applied).</summary>
public sealed class CqlTimeoutException : CqlException
{
    /// <summary>Creates the exception with a default message.</summary>
    public CqlTimeoutException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What went wrong.</param>
    public CqlTimeoutException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the exception that caused it.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="innerException">The cause.</param>
    public CqlTimeoutException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The connection to a node failed or closed (a request in flight may or may not have been applied).</summary>
public sealed class CqlConnectionException : CqlException
{
    /// <summary>Creates the exception with a default message.</summary>
    public CqlConnectionException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What went wrong.</param>
    public CqlConnectionException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the exception that caused it.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="innerException">The cause.</param>
    public CqlConnectionException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>Every node the request could go to failed or was down; <see cref="Errors"/> says why per node.</summary>
public sealed class CqlNoHostAvailableException : CqlException
{
    /// <summary>Creates the exception with a default message.</summary>
    public CqlNoHostAvailableException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What went wrong.</param>
    public CqlNoHostAvailableException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the exception that caused it.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="innerException">The cause.</param>
    public CqlNoHostAvailableException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception with the error of each node tried.</summary>
    public CqlNoHostAvailableException(IReadOnlyDictionary<string, Exception> errors)
        : base(errors.Count == 0 ? "No CQL node is up" : $"No CQL node could answer: {string.Join("; ", errors.Select(e => $"{e.Key}: {e.Value.Message}"))}")
    {
        Errors = errors;
    }

    /// <summary>Per node (host:port), the last error.</summary>
    public IReadOnlyDictionary<string, Exception> Errors { get; init; } = new Dictionary<string, Exception>();
}
