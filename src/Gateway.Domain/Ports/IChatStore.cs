namespace Gateway.Domain.Ports;

/// <summary>
/// The durable store behind the embedded write service: both its commit log and the queryable history.
/// Implementations: RocksDB (embedded). Every write method is atomic and durable (WAL synced) when it returns.
/// </summary>
public interface IChatStore : IMessageHistory, IDisposable
{
    /// <summary>The idempotency record for (tenant, sender, clientMessageId), or null.</summary>
    ValueTask<IdempotencyRecord?> GetIdempotencyAsync(string tenantId, string senderId, string clientMessageId, CancellationToken cancellationToken = default);

    /// <summary>Commits messages (with their idempotency records and the new chat heads) in one atomic, synced batch.
    /// Each chat's messages must continue its stored head densely, in list order; otherwise nothing is written and
    /// the call throws. The list is read only during the call and not kept.</summary>
    ValueTask AppendAsync(IReadOnlyList<ChatMessage> messages, CancellationToken cancellationToken = default);

    /// <summary>All members of a chat; empty when the chat does not exist.</summary>
    ValueTask<IReadOnlyList<string>> GetMembersAsync(string tenantId, string chatId, CancellationToken cancellationToken = default);

    /// <summary>True when the chat was created.</summary>
    ValueTask<bool> ChatExistsAsync(string tenantId, string chatId, CancellationToken cancellationToken = default);

    /// <summary>Durably creates the chat if missing and adds members (atomic, synced).</summary>
    ValueTask AddMembersAsync(string tenantId, string chatId, IReadOnlyCollection<string> userIds, long joinedAt, CancellationToken cancellationToken = default);

    /// <summary>Durably removes a member (atomic, synced). Returns false when the user was not a member.</summary>
    ValueTask<bool> RemoveMemberAsync(string tenantId, string chatId, string userId, CancellationToken cancellationToken = default);
}

/// <summary>What an idempotency key maps to: the original message's coordinates and the digest of its payload
/// (<see cref="Domain.PayloadDigest"/>; null in records written before digests were kept).</summary>
public sealed record IdempotencyRecord(string ChatId, ulong Seq, string MessageId, long SentAt, UInt128? PayloadDigest = null)
{
    /// <summary>True when a send of <paramref name="chatId"/> with a payload of <paramref name="digest"/> is a retry of the
    /// recorded one: the same chat and the same payload. A record without a digest matches any payload (it cannot tell).</summary>
    public bool IsRetry(string chatId, UInt128 digest) =>
        string.Equals(ChatId, chatId, StringComparison.Ordinal) && (PayloadDigest is not { } d || d == digest);
}

/// <summary>
/// The store could not be reached, or did not answer in time (a remote store such as Scylla: no node up, timeouts,
/// overload). The caller may retry; a write that failed this way may or may not have taken effect, which the store's
/// idempotent writes make harmless. Callers answer their own callers with "unavailable, retry".
/// </summary>
public sealed class StoreUnavailableException : Exception
{
    /// <summary>Creates the exception with a default message.</summary>
    public StoreUnavailableException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What went wrong.</param>
    public StoreUnavailableException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the exception that caused it.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="innerException">The cause.</param>
    public StoreUnavailableException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
