using Gateway.Protocol;

namespace Gateway.Client.Internal;

/// <summary>
/// A send that is not acknowledged yet. It outlives connections: after a reconnect it is written again with the
/// same <see cref="ClientMessageId"/> (the idempotency key), under a new request id.
/// </summary>
internal sealed class PendingSend
{
    public PendingSend(long order, string chatId, string clientMessageId, string contentType, ReadOnlyMemory<byte> content, long? expiresAt)
    {
        Order = order;
        ChatId = chatId;
        ClientMessageId = clientMessageId;
        ContentType = contentType;
        Content = content;
        ExpiresAt = expiresAt;
    }

    /// <summary>Call order; unacknowledged sends are written again in this order after a reconnect.</summary>
    public long Order { get; }

    public string ChatId { get; }

    public string ClientMessageId { get; }

    public string ContentType { get; }

    /// <summary>The caller's memory, not a copy: it must stay unchanged until the send completes.</summary>
    public ReadOnlyMemory<byte> Content { get; }

    public long? ExpiresAt { get; }

    /// <summary>The W3C traceparent of the caller's activity when the send was made (the same on every retry), or null.</summary>
    public string? TraceParent { get; init; }

    /// <summary>The W3C tracestate that goes with <see cref="TraceParent"/>, or null.</summary>
    public string? TraceState { get; init; }

    /// <summary>How many retryable errors this send got; drives its retry back-off.</summary>
    public int RetryCount { get; set; }

    /// <summary>
    /// A retry is waiting for its delay (back-off, or the server's retryAfterMs). Until it fires, neither the
    /// request-timeout rewrite nor a resume writes the send, so a RateLimited send is not written early.
    /// Guarded by the client's state lock.
    /// </summary>
    public bool RetryScheduled { get; set; }

    public TaskCompletionSource<SendAckFrame> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}
