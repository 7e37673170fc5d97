using Gateway.Protocol;

namespace Gateway.Domain;

/// <summary>A request to send a message. Validated by the write service, never trusted.</summary>
/// <param name="TenantId">Tenant.</param>
/// <param name="ChatId">Chat.</param>
/// <param name="SenderId">The sending user.</param>
/// <param name="ClientMessageId">The idempotency key, unique per sender.</param>
/// <param name="ContentType">Content type, opaque.</param>
/// <param name="Content">The message body, opaque. Owned by the command: it becomes the committed message's content, so
/// nothing may change or reuse this memory once the command is sent (see <see cref="Ports.IWriteService.SendAsync"/>).</param>
/// <param name="ExpiresAt">Expiry (Unix ms), or null.</param>
/// <param name="TraceId">The W3C traceparent of the context the send continues (the caller's span, or the client's
/// context passed on unchanged when the caller does not trace), or null. Readers validate it before use
/// (<see cref="TraceContext"/>).</param>
public sealed record SendMessage(
    string TenantId,
    string ChatId,
    string SenderId,
    string ClientMessageId,
    string ContentType,
    ReadOnlyMemory<byte> Content,
    long? ExpiresAt,
    string? TraceId = null)
{
    /// <summary>The W3C tracestate that goes with <see cref="TraceId"/>, or null.</summary>
    public string? TraceState { get; init; }
}

/// <summary>Outcome of a send: the committed message's coordinates, or an error code.</summary>
public readonly record struct SendResult(ErrorCode Error, string? ErrorMessage, ulong Seq, string? MessageId, long SentAt, bool Duplicate)
{
    /// <summary>True when the message is durable (or was already).</summary>
    public bool IsSuccess => Error == ErrorCode.None;

    /// <summary>A successful result.</summary>
    public static SendResult Ok(ulong seq, string messageId, long sentAt, bool duplicate) => new(ErrorCode.None, null, seq, messageId, sentAt, duplicate);

    /// <summary>A failed result.</summary>
    public static SendResult Fail(ErrorCode code, string message) => new(code, message, 0, null, 0, false);
}

/// <summary>Outcome of a membership change.</summary>
public readonly record struct AdminResult(ErrorCode Error, string? ErrorMessage)
{
    /// <summary>True when the change is durable.</summary>
    public bool IsSuccess => Error == ErrorCode.None;

    /// <summary>Success.</summary>
    public static AdminResult Ok { get; } = new(ErrorCode.None, null);

    /// <summary>A failed result.</summary>
    public static AdminResult Fail(ErrorCode code, string message) => new(code, message);
}
