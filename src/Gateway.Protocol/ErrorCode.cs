namespace Gateway.Protocol;

/// <summary>
/// Stable error codes carried in <see cref="FrameType.Error"/> frames and per-chat results.
/// Numbers never change meaning; new codes are only added. See the table in <c>proto/PROTOCOL.md</c>.
/// </summary>
public enum ErrorCode : ushort
{
    /// <summary>Success (used in per-chat results only).</summary>
    None = 0,

    /// <summary>The frame's type tag is not known to this server. The connection stays open.</summary>
    UnknownFrameType = 1,

    /// <summary>The frame is a MessagePack array but its fields have the wrong types or count.</summary>
    InvalidFrame = 2,

    /// <summary>The user is not a member of the chat, or the chat does not exist (the two are not distinguished).</summary>
    NotMember = 10,

    /// <summary>A RefreshToken carried a token that is invalid, expired, or names another user or tenant.</summary>
    Unauthenticated = 11,

    /// <summary>A field is out of its documented range (id syntax, content length, expiresAt, limit...).</summary>
    ValidationFailed = 20,

    /// <summary>The client message id was already used by this sender for a different chat.</summary>
    IdempotencyConflict = 21,

    /// <summary>A per-connection limit was reached (subscriptions, chats per frame, in-flight sends).</summary>
    LimitExceeded = 22,

    /// <summary>The service cannot take the request now; retry with the same client message id.</summary>
    Unavailable = 30,

    /// <summary>Too many requests; retry later.</summary>
    RateLimited = 40,

    /// <summary>An unexpected server fault; retry with the same client message id.</summary>
    Internal = 50,
}
