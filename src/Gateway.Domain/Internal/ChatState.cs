using System.Collections.Immutable;

namespace Gateway.Domain.Internal;

/// <summary>Identifies a chat across tenants.</summary>
internal readonly record struct ChatKey(string TenantId, string ChatId);

/// <summary>Identifies an idempotency key: (tenant, sender, clientMessageId).</summary>
internal readonly record struct IdempotencyKey(string TenantId, string SenderId, string ClientMessageId);

/// <summary>
/// The cached state of one existing chat. <see cref="Members"/> is an immutable snapshot swapped atomically by
/// the commit loop, so readers on any thread see either the old or the new set, never a torn one.
/// <see cref="Head"/> and <see cref="HeadLoaded"/> belong to the commit loop alone.
/// </summary>
internal sealed class ChatState
{
    private volatile ImmutableHashSet<string> _members;

    public ChatState(ImmutableHashSet<string> members) => _members = members;

    public ImmutableHashSet<string> Members
    {
        get => _members;
        set => _members = value;
    }

    /// <summary>Highest committed seq; valid only when <see cref="HeadLoaded"/>. Commit loop only.</summary>
    public ulong Head { get; set; }

    /// <summary>False until the loop has read the head from the store. Commit loop only.</summary>
    public bool HeadLoaded { get; set; }
}
