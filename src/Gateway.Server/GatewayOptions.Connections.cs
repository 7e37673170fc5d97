namespace Gateway.Server;

/// <summary>Connection-level limits, TLS and draining (see README "Limits" and docs/OPERATIONS.md "Draining and rolling gateway pods").</summary>
public sealed partial class GatewayOptions
{
    /// <summary>Most concurrent WebSocket connections from one source IP address on this server (0 disables). Over it the
    /// connection is answered HTTP 429 before its upgrade request is read. IPv4-mapped IPv6 addresses count as IPv4.</summary>
    public int MaxConnectionsPerIp { get; set; } = 5000;

    /// <summary>Most concurrent WebSocket connections of one user (tenant + user id) on this server (0 disables). Checked
    /// after authentication; over it the upgrade is answered HTTP 429.</summary>
    public int MaxConnectionsPerUser { get; set; } = 20;

    /// <summary>Sustained rate of connection attempts (TCP connections reaching the WebSocket listener) per source IP
    /// address, per second (0 disables). Over it the attempt is answered HTTP 429 with <c>Retry-After</c>.</summary>
    public double HandshakesPerSecondPerIp { get; set; } = 20;

    /// <summary>Connection attempts one source IP address may make back to back before
    /// <see cref="HandshakesPerSecondPerIp"/> applies (the token bucket's size).</summary>
    public int HandshakeBurstPerIp { get; set; } = 50;

    /// <summary>On shutdown, how long open connections keep being served after the <c>Drain</c> frame, in seconds; the ones
    /// still open then are closed with 1001. The host's shutdown timeout is this plus 5 s.</summary>
    public double DrainGraceSeconds { get; set; } = 10;

    /// <summary>On shutdown, each connection is told to reconnect after a delay drawn uniformly from [0, this] seconds, so
    /// clients do not all reconnect at once. Keep it below <see cref="DrainGraceSeconds"/>.</summary>
    public double DrainJitterSeconds { get; set; } = 5;

    /// <summary>TLS for the WebSocket listener (section <c>Gateway:Tls</c>); off unless a certificate is configured.</summary>
    public TlsOptions Tls { get; set; } = new();
}

/// <summary>Configuration section <c>Gateway:Tls</c>: serve <c>wss://</c> on the WebSocket listener.</summary>
public sealed class TlsOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "Gateway:Tls";

    /// <summary>The server certificate: a PKCS#12 file (<c>.pfx</c>/<c>.p12</c>) or a PEM certificate (chain). When empty
    /// the listener speaks plain <c>ws://</c>.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>The PEM private key of a PEM certificate (omit when the key is in <see cref="CertificatePath"/>).</summary>
    public string? KeyPath { get; set; }

    /// <summary>The password of a PKCS#12 file, or of an encrypted PEM key.</summary>
    [SecretSetting]
    public string? Password { get; set; }

    /// <summary>How often the certificate and key files are checked for a change, in seconds (a file-system watcher
    /// usually notices sooner). A changed certificate serves new connections; open ones keep theirs.</summary>
    public int ReloadCheckSeconds { get; set; } = 10;

    /// <summary>True when a certificate is configured.</summary>
    public bool Enabled => !string.IsNullOrWhiteSpace(CertificatePath);
}
