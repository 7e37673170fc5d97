namespace Gateway.Domain;

/// <summary>A committed chat message: what the store keeps and what subscribers receive.</summary>
/// <param name="TenantId">Tenant the chat belongs to.</param>
/// <param name="ChatId">Chat id.</param>
/// <param name="Seq">Dense per-chat sequence number, starting at 1.</param>
/// <param name="MessageId">Globally unique message id assigned by the write service.</param>
/// <param name="SenderId">User id of the sender.</param>
/// <param name="SentAt">Commit time, Unix milliseconds.</param>
/// <param name="ContentType">MIME-like content type, e.g. <c>text/plain</c>.</param>
/// <param name="Content">Opaque content bytes.</param>
/// <param name="ExpiresAt">Unix milliseconds after which the message is never returned, or null.</param>
/// <param name="ClientMessageId">The sender's idempotency key.</param>
public sealed record ChatMessage(
    string TenantId,
    string ChatId,
    ulong Seq,
    string MessageId,
    string SenderId,
    long SentAt,
    string ContentType,
    ReadOnlyMemory<byte> Content,
    long? ExpiresAt,
    string ClientMessageId)
{
    /// <summary>True when a send of <paramref name="contentType"/>, <paramref name="content"/> and
    /// <paramref name="expiresAt"/> asks to store exactly this message's payload (a retry, not a reuse of its key).</summary>
    public bool HasPayload(string contentType, ReadOnlySpan<byte> content, long? expiresAt) =>
        string.Equals(ContentType, contentType, StringComparison.Ordinal) && ExpiresAt == expiresAt && Content.Span.SequenceEqual(content);

    /// <summary>True when the message has expired at <paramref name="nowMs"/>.</summary>
    public bool IsExpiredAt(long nowMs) => ExpiresAt is { } e && e <= nowMs;
}
