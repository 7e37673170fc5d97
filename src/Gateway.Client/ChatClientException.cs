using Gateway.Protocol;

namespace Gateway.Client;

/// <summary>
/// A request failed: the server answered with an error code, refused the connection, or the connection was lost
/// while a request other than a send was in flight.
/// </summary>
public class ChatClientException : Exception
{
    /// <summary>Creates an exception with an error code.</summary>
    public ChatClientException(ErrorCode code, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Code = code;
    }

    /// <summary>Creates an exception with <see cref="ErrorCode.Internal"/>.</summary>
    public ChatClientException()
        : this(ErrorCode.Internal, "Chat client error.")
    {
    }

    /// <summary>Creates an exception with <see cref="ErrorCode.Internal"/>.</summary>
    public ChatClientException(string message)
        : this(ErrorCode.Internal, message)
    {
    }

    /// <summary>Creates an exception with <see cref="ErrorCode.Internal"/>.</summary>
    public ChatClientException(string message, Exception? innerException)
        : this(ErrorCode.Internal, message, innerException)
    {
    }

    /// <summary>The protocol error code; <see cref="ErrorCode.Unavailable"/> for a lost connection.</summary>
    public ErrorCode Code { get; }

    /// <summary>The WebSocket close code the server sent, when the failure came from a close.</summary>
    public int? CloseStatus { get; init; }

    /// <summary>The server's minimum wait before retrying (the <c>retryAfterMs</c> of an
    /// <see cref="ErrorCode.RateLimited"/> error), or null when it gave none.</summary>
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>The HTTP status of a refused upgrade (e.g. 401), when the failure came from one.</summary>
    public int? HttpStatus { get; init; }

    /// <summary>True for codes where the same request may be retried (<see cref="ErrorCode.Unavailable"/>,
    /// <see cref="ErrorCode.RateLimited"/>, <see cref="ErrorCode.Internal"/>).</summary>
    public bool IsRetryable => IsRetryableCode(Code);

    internal static bool IsRetryableCode(ErrorCode code) =>
        code is ErrorCode.Unavailable or ErrorCode.Internal or ErrorCode.RateLimited;
}
