using Gateway.Protocol;

namespace Gateway.Nats;

/// <summary>A writer answered a read with an error, or could not be reached in time.</summary>
public sealed class RemoteException : Exception
{
    /// <summary>Creates the exception.</summary>
    public RemoteException(ErrorCode code, string message)
        : base(message) => Code = code;

    /// <summary>Creates the exception.</summary>
    public RemoteException()
        : this(ErrorCode.Unavailable, "unavailable")
    {
    }

    /// <summary>Creates the exception.</summary>
    public RemoteException(string message)
        : this(ErrorCode.Unavailable, message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public RemoteException(string message, Exception innerException)
        : base(message, innerException) => Code = ErrorCode.Unavailable;

    /// <summary>The error code.</summary>
    public ErrorCode Code { get; }
}
