using System.Net.Security;

namespace Gateway.Cql;

/// <summary>How to reach and talk to a cluster.</summary>
public sealed class CqlClusterOptions
{
    /// <summary>Nodes to start from: "host" or "host:port". The rest of the ring is discovered from <c>system.peers</c>.</summary>
    public IList<string> ContactPoints { get; init; } = [];

    /// <summary>The native transport port of nodes named without one, and of discovered peers.</summary>
    public int Port { get; init; } = 9042;

    /// <summary>The keyspace every connection uses (USE on connect); null: statements name their keyspace.</summary>
    public string? Keyspace { get; init; }

    /// <summary>User for PasswordAuthenticator (SASL PLAIN); null: no credentials.</summary>
    public string? Username { get; init; }

    /// <summary>Password for <see cref="Username"/>.</summary>
    public string? Password { get; init; }

    /// <summary>TLS settings; null: plain TCP. The target host is set per node.</summary>
    public SslClientAuthenticationOptions? Tls { get; init; }

    /// <summary>The data center whose nodes are preferred; null: the contact point's.</summary>
    public string? LocalDatacenter { get; init; }

    /// <summary>The consistency of requests that do not set one.</summary>
    public CqlConsistency DefaultConsistency { get; init; } = CqlConsistency.LocalQuorum;

    /// <summary>The serial consistency of conditional statements that do not set one.</summary>
    public CqlConsistency DefaultSerialConsistency { get; init; } = CqlConsistency.LocalSerial;

    /// <summary>Rows per page of a SELECT that does not set one.</summary>
    public int DefaultPageSize { get; init; } = 5000;

    /// <summary>How long a TCP connect, TLS handshake and STARTUP may take.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long one request waits for its response before failing with <see cref="CqlTimeoutException"/>.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(12);

    /// <summary>An idle connection sends OPTIONS this often, and is closed when the answer does not come within <see cref="RequestTimeout"/>.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Connections per node (per shard on Scylla when <see cref="ShardAware"/>).</summary>
    public int ConnectionsPerHost { get; init; } = 1;

    /// <summary>Requests in flight per connection (stream ids); at most 32768.</summary>
    public int MaxRequestsPerConnection { get; init; } = 2048;

    /// <summary>First delay before reconnecting to a node that went away; doubles (with jitter) up to <see cref="ReconnectMaxDelay"/>.</summary>
    public TimeSpan ReconnectBaseDelay { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The longest delay between reconnection attempts.</summary>
    public TimeSpan ReconnectMaxDelay { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Route each request to a replica of its partition (Murmur3 token of the bound partition key).</summary>
    public bool TokenAware { get; init; } = true;

    /// <summary>On Scylla, route to the shard that owns the token, over the shard-aware port when the node has one.</summary>
    public bool ShardAware { get; init; } = true;

    /// <summary>Follow topology and status events (REGISTER) and the ring in <c>system.peers</c>; off: use the contact points only.</summary>
    public bool DiscoverPeers { get; init; } = true;
}
