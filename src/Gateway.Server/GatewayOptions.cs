using Gateway.Protocol;

namespace Gateway.Server;

/// <summary>Configuration section <c>Gateway</c>. Every value can be set with <c>--Gateway:Name=value</c> or
/// the environment variable <c>Gateway__Name</c>. Defaults are what a development box wants.</summary>
public sealed partial class GatewayOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "Gateway";

    /// <summary>WebSocket listener, <c>host:port</c> (port 0 picks a free port).</summary>
    public string WebSocketEndpoint { get; set; } = "127.0.0.1:8080";

    /// <summary>HTTP API listener (health, admin, BFF send), <c>host:port</c>.</summary>
    public string HttpEndpoint { get; set; } = "127.0.0.1:8081";

    /// <summary>WebSocket path.</summary>
    public string Path { get; set; } = ProtocolConstants.DefaultPath;

    /// <summary>Directory of the embedded RocksDB store and the development keys.</summary>
    public string DataDirectory { get; set; } = "data";

    /// <summary>If set, the bound endpoints are written here as JSON once listening (for tests and scripts).</summary>
    public string? PortsFile { get; set; }

    /// <summary>Largest WebSocket message, all fragments together.</summary>
    public int MaxMessageBytes { get; set; } = ProtocolConstants.DefaultMaxMessageBytes;

    /// <summary>Largest message content.</summary>
    public int MaxContentBytes { get; set; } = ProtocolConstants.DefaultMaxContentBytes;

    /// <summary>Most chats one connection may be subscribed to.</summary>
    public int MaxSubscriptionsPerConnection { get; set; } = 2000;

    /// <summary>Most chats in one Subscribe or Unsubscribe frame.</summary>
    public int MaxChatsPerSubscribe { get; set; } = ProtocolConstants.DefaultMaxChatsPerSubscribe;

    /// <summary>Sends a connection may have waiting for durability; beyond it the gateway stops reading that socket.</summary>
    public int MaxInFlightSends { get; set; } = 64;

    /// <summary>Outbound queue bound in frames; overflow closes the connection with 4002.</summary>
    public int MaxOutboundFrames { get; set; } = 1024;

    /// <summary>Outbound queue bound in bytes; overflow closes the connection with 4002.</summary>
    public long MaxOutboundBytes { get; set; } = 1024 * 1024;

    /// <summary>Messages per history read during catch-up.</summary>
    public int CatchUpPageSize { get; set; } = 100;

    /// <summary>Idle time after which the server pings, in seconds (0 disables).</summary>
    public int HeartbeatSeconds { get; set; } = 30;

    /// <summary>A connection from which nothing (not even a pong) arrived this long is closed with 1001, in seconds
    /// (0 disables). Three heartbeats: a live client answers every ping.</summary>
    public int IdleTimeoutSeconds { get; set; } = 90;

    /// <summary>Time allowed to complete the WebSocket handshake, in seconds.</summary>
    public double HandshakeTimeoutSeconds { get; set; } = 10;

    /// <summary>If non-empty, browser <c>Origin</c> values allowed to connect (native clients send none).</summary>
    public string[] AllowedOrigins { get; set; } = [];

    /// <summary>Per-user send rate (frames per second, across the user's connections on this server).</summary>
    public double SendsPerSecond { get; set; } = 20;

    /// <summary>Per-user send burst.</summary>
    public int SendBurst { get; set; } = 100;

    /// <summary>Per-user Subscribe frames per second.</summary>
    public double SubscribesPerSecond { get; set; } = 10;

    /// <summary>Per-user Subscribe burst.</summary>
    public int SubscribeBurst { get; set; } = 20;

    /// <summary>Per-user History requests per second.</summary>
    public double HistoryPerSecond { get; set; } = 10;

    /// <summary>Per-user History burst.</summary>
    public int HistoryBurst { get; set; } = 20;

    /// <summary>Per-user Typing signals per second (over it they are dropped silently).</summary>
    public double TypingPerSecond { get; set; } = 5;

    /// <summary>Per-user Typing burst.</summary>
    public int TypingBurst { get; set; } = 10;

    /// <summary>How long before token expiry the server sends TokenExpiring, in seconds (capped at a third of the
    /// token's remaining lifetime).</summary>
    public int TokenRefreshLeadSeconds { get; set; } = 60;

    /// <summary>How long after token expiry a connection may live without a RefreshToken, in seconds.</summary>
    public int TokenGraceSeconds { get; set; } = 30;

    /// <summary>
    /// Run socket I/O continuations inline on the transport's I/O threads instead of queueing them to the thread pool
    /// (Kestrel's <c>SocketTransportOptions.UnsafePreferInlineScheduling</c>). Saves a thread-pool hop per read and per
    /// send, which matters in broadcast (one send per subscriber per message); unsafe when application code blocks, since
    /// it would block an I/O thread. Off by default; see README "Performance" for the measured effect.
    /// </summary>
    public bool PreferInlineScheduling { get; set; }

    /// <summary>Longest a message may live (expiresAt - now), in seconds: 30 days.</summary>
    public long MaxExpirySeconds { get; set; } = 30L * 24 * 3600;

    /// <summary>Slow-consumer closes (4002) are logged at most once per this many seconds, with the number of closes not
    /// logged since the last line (the metric counts every one).</summary>
    public int SlowConsumerLogSeconds { get; set; } = 10;
}

/// <summary>Configuration section <c>Gateway:Auth</c>: how tokens and admin calls are authenticated. Without any key
/// setting, development keys are generated in the data directory, and only for <c>--role all</c> with both listeners on
/// loopback addresses; every other set-up refuses to start and names the settings to set.</summary>
public sealed class AuthOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "Gateway:Auth";

    /// <summary>HS256 key (base64, at least 32 bytes).</summary>
    [SecretSetting]
    public string? SigningKey { get; set; }

    /// <summary>A file holding the HS256 key (base64, at least 32 bytes), e.g. a mounted secret; instead of
    /// <see cref="SigningKey"/>.</summary>
    public string? SigningKeyFile { get; set; }

    /// <summary>PEM files with RSA or EC public keys for RS256/ES256 tokens.</summary>
    public string[] PublicKeyFiles { get; set; } = [];

    /// <summary>A JWKS file with the issuer's public keys (read once at start).</summary>
    public string? JwksFile { get; set; }

    /// <summary>URL of the issuer's JWKS document: keys are fetched at start, every <see cref="KeysRefreshSeconds"/>, and
    /// when a token names a key id (<c>kid</c>) not yet known (at most every <see cref="KeysMinRefreshSeconds"/>).</summary>
    public string? JwksUrl { get; set; }

    /// <summary>OpenID Connect issuer URL: its discovery document (<c>/.well-known/openid-configuration</c>) gives the
    /// JWKS URL and, unless <see cref="Issuer"/> is set, the required <c>iss</c>. Refreshed like <see cref="JwksUrl"/>.</summary>
    public string? Authority { get; set; }

    /// <summary>Refuse <c>http://</c> for <see cref="JwksUrl"/> and <see cref="Authority"/> (set false only for a local
    /// identity provider in development or tests).</summary>
    public bool RequireHttpsMetadata { get; set; } = true;

    /// <summary>How often keys from <see cref="JwksUrl"/> or <see cref="Authority"/> are fetched again, in seconds; a key the
    /// issuer removed stops validating after the next fetch.</summary>
    public int KeysRefreshSeconds { get; set; } = 300;

    /// <summary>Least time between two fetches caused by tokens with an unknown <c>kid</c>, in seconds: tokens with made-up
    /// key ids cannot make the gateway hammer the identity provider.</summary>
    public int KeysMinRefreshSeconds { get; set; } = 30;

    /// <summary>Required <c>iss</c>, if set.</summary>
    public string? Issuer { get; set; }

    /// <summary>Required <c>aud</c>, if set.</summary>
    public string? Audience { get; set; }

    /// <summary>Allowed clock difference when checking <c>exp</c>/<c>nbf</c>, in seconds.</summary>
    public int ClockSkewSeconds { get; set; } = 30;

    /// <summary>Bearer credential of the admin HTTP API.</summary>
    [SecretSetting]
    public string? AdminKey { get; set; }

    /// <summary>A file holding the admin API credential, e.g. a mounted secret; instead of <see cref="AdminKey"/>.</summary>
    public string? AdminKeyFile { get; set; }

    /// <summary>Claim carrying the tenant id.</summary>
    public string TenantClaim { get; set; } = "tid";
}

/// <summary>A setting whose value is a secret: error messages and <c>--help</c> never print it.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class SecretSettingAttribute : Attribute;
