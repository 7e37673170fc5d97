namespace Gateway.Nats;

/// <summary>Configuration section <c>Nats</c>: how the distributed roles reach NATS JetStream, and how chats are laid
/// out on it. Every value can be set with <c>--Nats:Name=value</c> or the environment variable <c>Nats__Name</c>.</summary>
public sealed class NatsOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "Nats";

    /// <summary>Server URL(s), comma separated, e.g. <c>nats://10.0.0.1:4222,nats://10.0.0.2:4222</c>.
    /// Required by the <c>gateway</c> and <c>writer</c> roles.</summary>
    public string? Url { get; set; }

    /// <summary>User name (with <see cref="Password"/>), if the server requires one.</summary>
    public string? User { get; set; }

    /// <summary>Password of <see cref="User"/>.</summary>
    public string? Password { get; set; }

    /// <summary>Authentication token, if the server uses token auth.</summary>
    public string? Token { get; set; }

    /// <summary>Use TLS to the server (implied by a <c>tls://</c> URL or any of the files below).</summary>
    public bool Tls { get; set; }

    /// <summary>PEM file of the CA that signed the server certificate.</summary>
    public string? TlsCaFile { get; set; }

    /// <summary>PEM client certificate for mutual TLS (with <see cref="TlsKeyFile"/>).</summary>
    public string? TlsCertFile { get; set; }

    /// <summary>PEM private key of <see cref="TlsCertFile"/>.</summary>
    public string? TlsKeyFile { get; set; }

    /// <summary>Number of subject partitions, <c>chat.&lt;p&gt;.…</c>, p = hash(tenant/chat) mod this. Fixed for the life of a
    /// deployment: changing it moves chats to other subjects (and their history out of reach of the CAS).</summary>
    public int Partitions { get; set; } = 16;

    /// <summary>Partitions per JetStream stream: streams cover consecutive partition ranges so they can be placed on
    /// different servers. Must divide <see cref="Partitions"/>. Default: one stream for all.</summary>
    public int PartitionsPerStream { get; set; } = 16;

    /// <summary>Stream replicas (1 on a single server; 3 on a 3-node cluster survives the loss of one node).</summary>
    public int Replicas { get; set; } = 1;

    /// <summary>How long the log keeps events, in hours (0 = forever). The history store keeps them for reads; the
    /// log only has to outlive the slowest projector and the idempotency window.</summary>
    public int StreamMaxAgeHours { get; set; } = 7 * 24;

    /// <summary>JetStream duplicate window (<c>Nats-Msg-Id</c>), in seconds.</summary>
    public int DuplicateWindowSeconds { get; set; } = 120;

    /// <summary>Timeout of one request (gateway → writer, writer → JetStream), in milliseconds.</summary>
    public int RequestTimeoutMs { get; set; } = 2000;

    /// <summary>Total time a gateway keeps retrying one command (idempotently) before answering
    /// <c>Unavailable</c>, in milliseconds.</summary>
    public int CommandDeadlineMs { get; set; } = 5000;

    /// <summary>This process's name on the bus (the NATS connection name; a writer's projection consumers are described
    /// with it). Default: machine name. A writer's position in the log lives in its history store, not under this name.</summary>
    public string? NodeId { get; set; }

    /// <summary>Above this many log entries not yet in a writer's history store, the writer is not ready (<c>/readyz</c>
    /// 503) and refuses reads that need the projection at once, so gateways retry on another writer.</summary>
    public int ProjectionMaxLag { get; set; } = 10_000;

    /// <summary>A projection behind the log that made no progress for this long (ms) counts as stalled: not ready, reads
    /// refused at once.</summary>
    public int ProjectionStallMs { get; set; } = 5000;

    /// <summary>How often (ms) a writer reads each stream's last position to measure its projection's lag.</summary>
    public int ProjectionCheckMs { get; set; } = 500;
}
