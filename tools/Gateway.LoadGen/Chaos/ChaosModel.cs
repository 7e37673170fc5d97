namespace Gateway.LoadGen.Chaos;

/// <summary>One Message frame as a member's client received it (raw: before any client-side dedup or repair).</summary>
/// <param name="Member">The receiving user.</param>
/// <param name="Chat">The chat.</param>
/// <param name="Seq">The server's seq.</param>
/// <param name="MessageId">The server's message id.</param>
/// <param name="Sender">The sender the frame names.</param>
/// <param name="ClientMessageId">The sender's client message id, carried in the content by the chaos senders.</param>
/// <param name="Connection">The receiving client's connection number (1, 2, … per member).</param>
/// <param name="T">Seconds since the run started.</param>
public sealed record ChaosDelivery(string Member, string Chat, ulong Seq, string MessageId, string Sender, string? ClientMessageId, int Connection, double T);

/// <summary>One SendAck for a send.</summary>
public sealed record ChaosAck(ulong Seq, string MessageId, bool Duplicate, double T);

/// <summary>One logical send (one client message id), written once or many times until acknowledged.</summary>
public sealed class ChaosSend
{
    public required string Sender { get; init; }

    public required string Chat { get; init; }

    public required string ClientMessageId { get; init; }

    /// <summary>Seconds since the run started when the send was issued (first written or queued).</summary>
    public double IssuedAt { get; init; }

    /// <summary>How many times it was written to a connection.</summary>
    public int Attempts { get; set; }

    /// <summary>Every ack it got (a retry after an ack that was lost on the wire acks again).</summary>
    public List<ChaosAck> Acks { get; } = [];

    /// <summary>A non-retryable error ended it (the verdict counts it as unacknowledged).</summary>
    public string? FatalError { get; set; }

    /// <summary>When it was first acknowledged, or null.</summary>
    public double? FirstAckAt => Acks.Count > 0 ? Acks.Min(a => a.T) : null;
}

/// <summary>One MessageCreated event read straight from a JetStream stream.</summary>
public sealed record ChaosLogEntry(string Stream, ulong StreamSeq, string Tenant, string Chat, ulong Seq, string MessageId, string Sender, string ClientMessageId);

/// <summary>One message of a chat's history as the History read returned it.</summary>
public sealed record ChaosHistoryEntry(ulong Seq, string MessageId, string Sender, string? ClientMessageId);

/// <summary>One injected fault.</summary>
public sealed class ChaosKill
{
    /// <summary>Component name (<c>nats-1</c>, <c>writer-2</c>, <c>gateway-1</c>, <c>server</c>).</summary>
    public required string Component { get; init; }

    /// <summary>Component kind (<c>nats</c>, <c>writer</c>, <c>gateway</c>, <c>server</c>).</summary>
    public required string Kind { get; init; }

    /// <summary>Seconds since the run started when SIGKILL was sent.</summary>
    public double KilledAt { get; init; }

    /// <summary>When its restart was ready again (ports file / port open), or null when it did not come back.</summary>
    public double? RestartedAt { get; set; }

    /// <summary>Seconds from the kill until the first ack of a send issued after the kill (null: none).</summary>
    public double? FirstAckAfterSeconds { get; set; }

    /// <summary>Seconds from the kill until every send outstanding at the kill or issued before that first ack was acknowledged (null: never).</summary>
    public double? BacklogDrainedSeconds { get; set; }

    /// <summary>Sends in that backlog.</summary>
    public int Backlog { get; set; }

    /// <summary>What went wrong with the restart, if anything.</summary>
    public string? Error { get; set; }
}

/// <summary>Everything a chaos run observed: the input of <see cref="ChaosVerdict"/>.</summary>
public sealed class ChaosObservations
{
    /// <summary>Chat → its members (every member is subscribed from the start to the end of the run).</summary>
    public Dictionary<string, string[]> ChatMembers { get; init; } = new(StringComparer.Ordinal);

    public List<ChaosSend> Sends { get; init; } = [];

    /// <summary>Deliveries in arrival order (per member the order matters; across members it does not).</summary>
    public List<ChaosDelivery> Deliveries { get; init; } = [];

    /// <summary>MessageCreated events of the chats in stream order, or null when there is no log (embedded).</summary>
    public List<ChaosLogEntry>? Log { get; set; }

    /// <summary>Source (the server it was read from: <c>writer-1</c>, <c>gateway-2</c>, …) → chat → the history read at
    /// the end (any order). Empty when not read.</summary>
    public Dictionary<string, Dictionary<string, List<ChaosHistoryEntry>>> Histories { get; init; } = new(StringComparer.Ordinal);

    /// <summary>History reads that failed (source, chat, error): counted by the verdict as unreadable.</summary>
    public List<string> HistoryFailures { get; init; } = [];

    public List<ChaosKill> Kills { get; init; } = [];
}
