namespace Gateway.Storage.Scylla;

/// <summary>The Scylla store's settings (bound from the <c>Store</c> section: <c>--Store:Kind=scylla --Store:ContactPoints=…</c>).</summary>
public class ScyllaStoreOptions
{
    /// <summary>Nodes to start from, comma separated ("host" or "host:port").</summary>
    public string ContactPoints { get; set; } = "";

    /// <summary>The native transport port of nodes named without one.</summary>
    public int Port { get; set; } = 9042;

    /// <summary>The keyspace holding the tables (created by <c>schema apply</c>).</summary>
    public string Keyspace { get; set; } = "chatgw";

    /// <summary>The replication of the keyspace when <c>schema apply</c> creates it, as CQL map text.</summary>
    public string Replication { get; set; } = "{'class': 'NetworkTopologyStrategy', 'replication_factor': 3}";

    /// <summary>The data center whose nodes serve requests (LOCAL_QUORUM is counted there); empty: the contact point's.</summary>
    public string? LocalDatacenter { get; set; }

    /// <summary>PasswordAuthenticator credentials; empty: none.</summary>
    public string? Username { get; set; }

    /// <summary>Password for <see cref="Username"/>.</summary>
    public string? Password { get; set; }

    /// <summary>TLS to the nodes.</summary>
    public bool Tls { get; set; }

    /// <summary>A PEM file of the CA that signs the nodes' certificates; empty: the system's trust store.</summary>
    public string? TlsCaFile { get; set; }

    /// <summary>Messages per partition of the <c>messages</c> table: seq s lives in bucket (s − 1) / BucketSize. Fixed for
    /// the life of a keyspace (the schema records it and the store refuses to open with another value).</summary>
    public int BucketSize { get; set; } = 1000;

    /// <summary>How long an idempotency key is kept (the protocol promises at least 24 h).</summary>
    public int IdempotencyRetentionHours { get; set; } = 168;

    /// <summary>How long one request may take.</summary>
    public int RequestTimeoutMs { get; set; } = 5000;

    /// <summary>How long a writer holds the lease to project a log without renewing it; a writer that dies is replaced
    /// after at most this long.</summary>
    public int ProjectionLeaseMs { get; set; } = 4000;

    /// <summary>Idempotency retention in seconds, as the TTL of the record.</summary>
    internal int IdempotencyTtlSeconds => checked(IdempotencyRetentionHours * 3600);
}
