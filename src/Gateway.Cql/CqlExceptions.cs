namespace Gateway.Cql;

/// <summary>Error codes of an ERROR response (spec §9).</summary>
public enum CqlErrorCode
{
    ServerError = 0x0000,
    ProtocolError = 0x000A,
    BadCredentials = 0x0100,
    Unavailable = 0x1000,
    Overloaded = 0x1001,
    IsBootstrapping = 0x1002,
    TruncateError = 0x1003,
    WriteTimeout = 0x1100,
    ReadTimeout = 0x1200,
    ReadFailure = 0x1300,
    FunctionFailure = 0x1400,
    WriteFailure = 0x1500,
    SyntaxError = 0x2000,
    Unauthorized = 0x2100,
    Invalid = 0x2200,
    ConfigError = 0x2300,
    AlreadyExists = 0x2400,
    Unprepared = 0x2500,
}

/// <summary>Anything that went wrong with a CQL request.</summary>
public class CqlException : Exception
{
    public CqlException()
    {
    }

    public CqlException(string message)
        : base(message)
    {
    }

    public CqlException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>An ERROR response from a node, with the details its code carries (spec §9).</summary>
public sealed class CqlServerException : CqlException
{
    public CqlServerException()
    {
    }

    public CqlServerException(string message)
        : base(message)
    {
    }

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
    public CqlTimeoutException()
    {
    }

    public CqlTimeoutException(string message)
        : base(message)
    {
    }

    public CqlTimeoutException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The connection to a node failed or closed (a request in flight may or may not have been applied).</summary>
public sealed class CqlConnectionException : CqlException
{
    public CqlConnectionException()
    {
    }

    public CqlConnectionException(string message)
        : base(message)
    {
    }

    public CqlConnectionException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>Every node the request could go to failed or was down; <see cref="Errors"/> says why per node.</summary>
public sealed class CqlNoHostAvailableException : CqlException
{
    public CqlNoHostAvailableException()
    {
    }

    public CqlNoHostAvailableException(string message)
        : base(message)
    {
    }

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
