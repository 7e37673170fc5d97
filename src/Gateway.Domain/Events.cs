namespace Gateway.Domain;

/// <summary>
/// The canonical event envelope: what the write service publishes on the event bus, in process or (as a log event,
/// proto/NATS.md) over NATS. The write service is its only publisher.
/// </summary>
/// <param name="EventId">Unique id of this event.</param>
/// <param name="EventType">One of <see cref="EventTypes"/>.</param>
/// <param name="OccurredAt">Unix milliseconds.</param>
/// <param name="SchemaVersion">Version of the payload schema; bumped on incompatible change.</param>
/// <param name="TraceId">Correlation id from the request that caused the event, if any.</param>
/// <param name="TenantId">Tenant.</param>
/// <param name="ChatId">Chat.</param>
/// <param name="Payload">The event payload: <see cref="MessageCreated"/>, <see cref="MemberAdded"/> or <see cref="MemberRemoved"/>.</param>
public sealed record EventEnvelope(
    string EventId,
    string EventType,
    long OccurredAt,
    int SchemaVersion,
    string? TraceId,
    string TenantId,
    string ChatId,
    object Payload)
{
    /// <summary>
    /// When the event became durable, as a <see cref="System.Diagnostics.Stopwatch.GetTimestamp"/> value of THIS process
    /// (0: unknown). Not part of the event's content: it travels with it in process only, so that the gateway can measure
    /// delivery lag (commit → frame handed to the socket) with a monotonic clock. A distributed bus derives it from the
    /// writer's wall-clock time on arrival.
    /// </summary>
    public long CommittedAt { get; init; }
}

/// <summary>Event type names.</summary>
public static class EventTypes
{
    /// <summary>A message was committed.</summary>
    public const string MessageCreated = "MessageCreated";

    /// <summary>A user became a member of a chat (also when the chat is created).</summary>
    public const string MemberAdded = "MemberAdded";

    /// <summary>A user was removed from a chat; live subscriptions must end.</summary>
    public const string MemberRemoved = "MemberRemoved";

    /// <summary>Current schema version of every payload.</summary>
    public const int SchemaVersion = 1;
}

/// <summary>Payload of <see cref="EventTypes.MessageCreated"/>.</summary>
public sealed record MessageCreated(ChatMessage Message);

/// <summary>Payload of <see cref="EventTypes.MemberAdded"/>.</summary>
public sealed record MemberAdded(string UserId);

/// <summary>Payload of <see cref="EventTypes.MemberRemoved"/>.</summary>
public sealed record MemberRemoved(string UserId);
