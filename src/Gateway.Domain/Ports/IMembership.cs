namespace Gateway.Domain.Ports;

/// <summary>Membership queries used to authorize subscriptions and sends.</summary>
public interface IMembership
{
    /// <summary>True when <paramref name="userId"/> is a member of the chat.</summary>
    ValueTask<bool> IsMemberAsync(string tenantId, string chatId, string userId, CancellationToken cancellationToken = default);

    /// <summary>The members of a chat (empty if the chat does not exist).</summary>
    ValueTask<IReadOnlyList<string>> GetMembersAsync(string tenantId, string chatId, CancellationToken cancellationToken = default);
}
