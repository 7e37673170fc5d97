namespace Gateway.Domain.Ports;

/// <summary>
/// The write service as its callers (gateway sessions, the HTTP API) see it. Embedded mode calls it in process;
/// the distributed gateway calls it over the bus. Every method is idempotent where the contract says so and
/// completes only after the change is durable.
/// </summary>
public interface IWriteService
{
    /// <summary>Validates, authorizes, deduplicates, sequences and durably commits a message, then publishes
    /// <see cref="EventTypes.MessageCreated"/>. A retry with the same (tenant, sender, clientMessageId) returns the
    /// original seq and messageId with <see cref="SendResult.Duplicate"/> set.</summary>
    /// <remarks>The command's <see cref="SendMessage.Content"/> becomes the committed message's content without a copy:
    /// the caller hands over memory that nothing changes or reuses afterwards (a buffer it copied the content into, not a
    /// pipe's or a pool's).</remarks>
    ValueTask<SendResult> SendAsync(SendMessage command, CancellationToken cancellationToken = default);

    /// <summary>Creates a chat with its first members (idempotent: creating an existing chat adds the members).</summary>
    ValueTask<AdminResult> CreateChatAsync(string tenantId, string chatId, IReadOnlyCollection<string> members, CancellationToken cancellationToken = default);

    /// <summary>Adds a member (idempotent).</summary>
    ValueTask<AdminResult> AddMemberAsync(string tenantId, string chatId, string userId, CancellationToken cancellationToken = default);

    /// <summary>Removes a member (idempotent) and publishes <see cref="EventTypes.MemberRemoved"/> so live subscriptions end.</summary>
    ValueTask<AdminResult> RemoveMemberAsync(string tenantId, string chatId, string userId, CancellationToken cancellationToken = default);
}
