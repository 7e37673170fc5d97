namespace Gateway.Domain.Ports;

/// <summary>
/// A history store that a projection of an ordered commit log writes into (the writers of distributed mode). The
/// projection keeps, per log, the position of the last entry it applied, and writes that position in the SAME atomic,
/// durable write as the changes it covers. After any crash the store therefore holds exactly a prefix of each log,
/// and the projection resumes right after it: nothing is applied twice, nothing is skipped, whatever order a broker
/// would have redelivered in.
/// </summary>
public interface IProjectionStore
{
    /// <summary>The position of the last entry of <paramref name="log"/> applied to this store (0: none).</summary>
    ValueTask<ulong> GetCheckpointAsync(string log, CancellationToken cancellationToken = default);

    /// <summary>
    /// Applies <paramref name="changes"/> in list order and sets the checkpoint of <paramref name="log"/> to
    /// <paramref name="checkpoint"/>, all in one atomic, synced write. A message whose seq is at or below its chat's
    /// stored head is already there and is left alone (counted in <see cref="ProjectionResult.Stale"/>); a message
    /// that would leave a hole (seq above head + 1) fails the whole call and nothing is written. Membership changes
    /// are idempotent.
    /// </summary>
    /// <exception cref="InvalidOperationException">A message does not follow its chat's head; nothing was written.</exception>
    ValueTask<ProjectionResult> ApplyAsync(string log, ulong checkpoint, IReadOnlyList<ProjectionChange> changes, CancellationToken cancellationToken = default);
}

/// <summary>What one projected log entry changes.</summary>
public enum ProjectionChangeKind
{
    /// <summary>A message was committed (<see cref="ProjectionChange.Message"/>).</summary>
    Message,

    /// <summary>Users joined (the chat exists from its first one on).</summary>
    MembersAdded,

    /// <summary>Users left.</summary>
    MembersRemoved,
}

/// <summary>One change of a projection batch.</summary>
/// <param name="Kind">What changes.</param>
/// <param name="TenantId">The chat's tenant.</param>
/// <param name="ChatId">The chat.</param>
/// <param name="Message">The message, for <see cref="ProjectionChangeKind.Message"/>.</param>
/// <param name="Users">The users, for membership changes.</param>
/// <param name="At">When the change happened (unix ms): a new member's joinedAt, a new chat's createdAt.</param>
public readonly record struct ProjectionChange(ProjectionChangeKind Kind, string TenantId, string ChatId, ChatMessage? Message, IReadOnlyList<string> Users, long At)
{
    /// <summary>A committed message.</summary>
    public static ProjectionChange Of(ChatMessage message) =>
        new(ProjectionChangeKind.Message, message.TenantId, message.ChatId, message, [], message.SentAt);
}

/// <summary>What <see cref="IProjectionStore.ApplyAsync"/> did.</summary>
/// <param name="Messages">Messages written.</param>
/// <param name="Stale">Messages left alone because their seq was already stored: a replay after a crash of an older
/// version, or a log that holds a seq twice (which the current write service never appends).</param>
public readonly record struct ProjectionResult(int Messages, int Stale);

/// <summary>
/// A projection store that several writers share (one database for the fleet, e.g. Scylla). Each log is projected by
/// one writer at a time, the holder of its lease; the others follow its checkpoint. Writes of a projected entry carry
/// the entry's log position as their write timestamp, so a replay after a crash, or a late write of a writer that lost
/// its lease, never overrides a later entry's effect.
/// </summary>
public interface ISharedProjectionStore : IProjectionStore
{
    /// <summary>How long a lease lasts without renewal: the longest a log goes unprojected after its holder died.</summary>
    TimeSpan LeaseDuration { get; }

    /// <summary>Takes the lease of <paramref name="log"/> for <paramref name="owner"/>, or renews it, for
    /// <paramref name="duration"/>. True when <paramref name="owner"/> holds it afterwards.</summary>
    ValueTask<bool> TryHoldLeaseAsync(string log, string owner, TimeSpan duration, CancellationToken cancellationToken = default);

    /// <summary>Gives the lease up if <paramref name="owner"/> holds it, so another writer takes over at once.</summary>
    ValueTask ReleaseLeaseAsync(string log, string owner, CancellationToken cancellationToken = default);
}
