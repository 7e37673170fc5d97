using System.Net;
using System.Security.Cryptography;
using Gateway.Nats;
using Gateway.Server.Auth;
using Gateway.Server.Connections;
using Gateway.Storage.Scylla;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace Gateway.Server.Config;

/// <summary>Collects rule failures as one message each: the setting, its value (secrets by length only) and the rule.</summary>
internal sealed class Rules(string section)
{
    public List<string> Errors { get; } = [];

    /// <summary>Records a failure of <paramref name="rule"/> for <c>section:name</c> unless <paramref name="ok"/>.</summary>
    public void Require(bool ok, string name, object? value, string rule, bool secret = false)
    {
        if (!ok)
        {
            Fail(name, value, rule, secret);
        }
    }

    public void Fail(string name, object? value, string rule, bool secret = false)
    {
        var path = $"{section}:{name}";
        Errors.Add($"{path}={SettingsSchema.Show(path, value, secret)} is not valid: {rule}");
    }

    public ValidateOptionsResult Result() => Errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(Errors);
}

/// <summary>Every rule of <see cref="GatewayOptions"/> (and its <c>Tls</c> section).</summary>
internal sealed class GatewayOptionsValidator : IValidateOptions<GatewayOptions>
{
    public ValidateOptionsResult Validate(string? name, GatewayOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var o = options;
        var r = new Rules(GatewayOptions.Section);
        r.Require(IPEndPoint.TryParse(o.WebSocketEndpoint, out var ws), nameof(o.WebSocketEndpoint), o.WebSocketEndpoint, "must be ip:port (e.g. 127.0.0.1:8080, 0.0.0.0:8080; port 0 picks a free one)");
        r.Require(IPEndPoint.TryParse(o.HttpEndpoint, out var http), nameof(o.HttpEndpoint), o.HttpEndpoint, "must be ip:port (e.g. 127.0.0.1:8081)");
        if (ws is not null && http is not null && ws.Port != 0 && ws.Equals(http))
        {
            r.Fail(nameof(o.HttpEndpoint), o.HttpEndpoint, $"must differ from {GatewayOptions.Section}:{nameof(o.WebSocketEndpoint)}");
        }

        r.Require(o.Path.StartsWith('/') && !o.Path.Any(c => char.IsWhiteSpace(c) || c is '?' or '#'), nameof(o.Path), o.Path, "must start with '/' and contain no spaces, '?' or '#'");
        r.Require(!string.IsNullOrWhiteSpace(o.DataDirectory), nameof(o.DataDirectory), o.DataDirectory, "must be a directory path");
        r.Require(o.MaxContentBytes > 0, nameof(o.MaxContentBytes), o.MaxContentBytes, "must be greater than 0");
        r.Require(o.MaxContentBytes <= 0 || (long)o.MaxMessageBytes >= (long)o.MaxContentBytes + 1024, nameof(o.MaxMessageBytes), o.MaxMessageBytes,
            $"must exceed {GatewayOptions.Section}:{nameof(o.MaxContentBytes)} ({o.MaxContentBytes}) by at least 1024 bytes of frame overhead");
        Positive(r, nameof(o.MaxSubscriptionsPerConnection), o.MaxSubscriptionsPerConnection);
        Positive(r, nameof(o.MaxChatsPerSubscribe), o.MaxChatsPerSubscribe);
        Positive(r, nameof(o.MaxInFlightSends), o.MaxInFlightSends);
        Positive(r, nameof(o.MaxOutboundFrames), o.MaxOutboundFrames);
        r.Require(o.MaxOutboundBytes > 0, nameof(o.MaxOutboundBytes), o.MaxOutboundBytes, "must be greater than 0");
        Positive(r, nameof(o.CatchUpPageSize), o.CatchUpPageSize);
        r.Require(o.HeartbeatSeconds >= 0, nameof(o.HeartbeatSeconds), o.HeartbeatSeconds, "must be >= 0 (0 disables)");
        r.Require(o.IdleTimeoutSeconds >= 0, nameof(o.IdleTimeoutSeconds), o.IdleTimeoutSeconds, "must be >= 0 (0 disables)");
        r.Require(o.IdleTimeoutSeconds <= 0 || o.HeartbeatSeconds <= 0 || o.IdleTimeoutSeconds > o.HeartbeatSeconds, nameof(o.IdleTimeoutSeconds), o.IdleTimeoutSeconds,
            $"must be longer than {GatewayOptions.Section}:{nameof(o.HeartbeatSeconds)} ({o.HeartbeatSeconds}), or a live client that answers every ping is closed");
        r.Require(o.HandshakeTimeoutSeconds > 0 && double.IsFinite(o.HandshakeTimeoutSeconds), nameof(o.HandshakeTimeoutSeconds), o.HandshakeTimeoutSeconds, "must be greater than 0");
        for (var i = 0; i < o.AllowedOrigins.Length; i++)
        {
            var origin = o.AllowedOrigins[i];
            // Any scheme: app shells send their own (capacitor://localhost, app://…), and sandboxed pages send "null".
            r.Require(origin == "null" || (Uri.TryCreate(origin, UriKind.Absolute, out var u) && u.Host.Length > 0
                    && u.PathAndQuery is "/" or "" && u.Fragment.Length == 0 && !origin.EndsWith('/')),
                $"{nameof(o.AllowedOrigins)}:{i}", origin, "must be an origin as clients send it: scheme://host[:port], no path (e.g. https://app.example.com, capacitor://localhost), or null");
        }

        Rate(r, nameof(o.SendsPerSecond), o.SendsPerSecond, nameof(o.SendBurst), o.SendBurst);
        Rate(r, nameof(o.SubscribesPerSecond), o.SubscribesPerSecond, nameof(o.SubscribeBurst), o.SubscribeBurst);
        Rate(r, nameof(o.HistoryPerSecond), o.HistoryPerSecond, nameof(o.HistoryBurst), o.HistoryBurst);
        Rate(r, nameof(o.TypingPerSecond), o.TypingPerSecond, nameof(o.TypingBurst), o.TypingBurst);
        r.Require(o.TokenRefreshLeadSeconds >= 0, nameof(o.TokenRefreshLeadSeconds), o.TokenRefreshLeadSeconds, "must be >= 0");
        r.Require(o.TokenGraceSeconds >= 0, nameof(o.TokenGraceSeconds), o.TokenGraceSeconds, "must be >= 0");
        r.Require(o.MaxExpirySeconds is > 0 and <= long.MaxValue / 1000, nameof(o.MaxExpirySeconds), o.MaxExpirySeconds, "must be greater than 0");
        r.Require(o.SlowConsumerLogSeconds >= 0, nameof(o.SlowConsumerLogSeconds), o.SlowConsumerLogSeconds, "must be >= 0 (0 logs every close)");
        r.Require(o.MaxConnectionsPerIp >= 0, nameof(o.MaxConnectionsPerIp), o.MaxConnectionsPerIp, "must be >= 0 (0 disables)");
        r.Require(o.MaxConnectionsPerUser >= 0, nameof(o.MaxConnectionsPerUser), o.MaxConnectionsPerUser, "must be >= 0 (0 disables)");
        r.Require(o.HandshakesPerSecondPerIp >= 0 && double.IsFinite(o.HandshakesPerSecondPerIp), nameof(o.HandshakesPerSecondPerIp), o.HandshakesPerSecondPerIp, "must be >= 0 (0 disables)");
        r.Require(o.HandshakesPerSecondPerIp <= 0 || o.HandshakeBurstPerIp >= 1, nameof(o.HandshakeBurstPerIp), o.HandshakeBurstPerIp, "must be at least 1");
        r.Require(o.DrainGraceSeconds >= 0 && double.IsFinite(o.DrainGraceSeconds), nameof(o.DrainGraceSeconds), o.DrainGraceSeconds, "must be >= 0");
        r.Require(o.DrainJitterSeconds >= 0 && double.IsFinite(o.DrainJitterSeconds), nameof(o.DrainJitterSeconds), o.DrainJitterSeconds, "must be >= 0");
        ValidateTls(r, o.Tls);
        return r.Result();
    }

    private static void ValidateTls(Rules r, TlsOptions tls)
    {
        r.Require(tls.ReloadCheckSeconds >= 1, "Tls:ReloadCheckSeconds", tls.ReloadCheckSeconds, "must be at least 1");
        if (!tls.Enabled)
        {
            r.Require(string.IsNullOrWhiteSpace(tls.KeyPath), "Tls:KeyPath", tls.KeyPath, "needs Gateway:Tls:CertificatePath");
            return;
        }

        if (!File.Exists(tls.CertificatePath))
        {
            r.Fail("Tls:CertificatePath", tls.CertificatePath, "the file does not exist");
            return;
        }

        if (!string.IsNullOrWhiteSpace(tls.KeyPath) && !File.Exists(tls.KeyPath))
        {
            r.Fail("Tls:KeyPath", tls.KeyPath, "the file does not exist");
            return;
        }

        try
        {
            TlsCertificateLoader.Load(tls).Dispose();
        }
        catch (InvalidOperationException e)
        {
            r.Fail("Tls:CertificatePath", tls.CertificatePath, e.Message);
        }
    }

    private static void Positive(Rules r, string name, int value) => r.Require(value > 0, name, value, "must be greater than 0");

    private static void Rate(Rules r, string rateName, double rate, string burstName, int burst)
    {
        r.Require(rate > 0 && double.IsFinite(rate), rateName, rate, "must be a number greater than 0");
        r.Require(burst >= 1, burstName, burst, "must be at least 1");
    }
}

/// <summary>Every rule of <see cref="AuthOptions"/>: keys parse, files exist and hold what they should, one source per secret.</summary>
internal sealed class AuthOptionsValidator : IValidateOptions<AuthOptions>
{
    public ValidateOptionsResult Validate(string? name, AuthOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var o = options;
        var r = new Rules(AuthOptions.Section);
        if (!string.IsNullOrEmpty(o.SigningKey) && !string.IsNullOrEmpty(o.SigningKeyFile))
        {
            r.Fail(nameof(o.SigningKeyFile), o.SigningKeyFile, $"set either {AuthOptions.Section}:{nameof(o.SigningKey)} or this, not both");
        }
        else if (!string.IsNullOrEmpty(o.SigningKey))
        {
            r.Require(AuthSecrets.IsHs256Key(o.SigningKey), nameof(o.SigningKey), o.SigningKey, AuthSecrets.Hs256Rule, secret: true);
        }
        else if (!string.IsNullOrEmpty(o.SigningKeyFile))
        {
            if (!File.Exists(o.SigningKeyFile))
            {
                r.Fail(nameof(o.SigningKeyFile), o.SigningKeyFile, "the file does not exist");
            }
            else
            {
                r.Require(AuthSecrets.IsHs256Key(File.ReadAllText(o.SigningKeyFile).Trim()), nameof(o.SigningKeyFile), o.SigningKeyFile, "the file's content " + AuthSecrets.Hs256Rule);
            }
        }

        if (!string.IsNullOrEmpty(o.AdminKey) && !string.IsNullOrEmpty(o.AdminKeyFile))
        {
            r.Fail(nameof(o.AdminKeyFile), o.AdminKeyFile, $"set either {AuthOptions.Section}:{nameof(o.AdminKey)} or this, not both");
        }
        else if (!string.IsNullOrEmpty(o.AdminKeyFile))
        {
            r.Require(File.Exists(o.AdminKeyFile) && File.ReadAllText(o.AdminKeyFile).Trim().Length > 0, nameof(o.AdminKeyFile), o.AdminKeyFile,
                "must be a file that holds the admin key");
        }

        for (var i = 0; i < o.PublicKeyFiles.Length; i++)
        {
            var file = o.PublicKeyFiles[i];
            if (!File.Exists(file))
            {
                r.Fail($"{nameof(o.PublicKeyFiles)}:{i}", file, "the file does not exist");
                continue;
            }

            try
            {
                _ = AuthSecrets.LoadPublicKey(file);
            }
            catch (Exception e) when (e is ArgumentException or CryptographicException)
            {
                r.Fail($"{nameof(o.PublicKeyFiles)}:{i}", file, "must be a PEM RSA or EC public key");
            }
        }

        if (!string.IsNullOrEmpty(o.JwksFile))
        {
            if (!File.Exists(o.JwksFile))
            {
                r.Fail(nameof(o.JwksFile), o.JwksFile, "the file does not exist");
            }
            else
            {
                try
                {
                    r.Require(new JsonWebKeySet(File.ReadAllText(o.JwksFile)).GetSigningKeys().Count > 0, nameof(o.JwksFile), o.JwksFile, "holds no signing key");
                }
                catch (ArgumentException)
                {
                    r.Fail(nameof(o.JwksFile), o.JwksFile, "must be a JWKS document (JSON with \"keys\")");
                }
            }
        }

        if (!string.IsNullOrEmpty(o.JwksUrl) && !string.IsNullOrEmpty(o.Authority))
        {
            r.Fail(nameof(o.Authority), o.Authority, $"set either {AuthOptions.Section}:{nameof(o.JwksUrl)} or this, not both");
        }

        Url(r, nameof(o.JwksUrl), o.JwksUrl, o.RequireHttpsMetadata);
        Url(r, nameof(o.Authority), o.Authority, o.RequireHttpsMetadata);
        r.Require(o.KeysRefreshSeconds >= 1, nameof(o.KeysRefreshSeconds), o.KeysRefreshSeconds, "must be at least 1");
        r.Require(o.KeysMinRefreshSeconds >= 1, nameof(o.KeysMinRefreshSeconds), o.KeysMinRefreshSeconds, "must be at least 1 (the rate limit on fetches caused by unknown key ids)");
        r.Require(o.ClockSkewSeconds >= 0, nameof(o.ClockSkewSeconds), o.ClockSkewSeconds, "must be >= 0");
        r.Require(!string.IsNullOrWhiteSpace(o.TenantClaim), nameof(o.TenantClaim), o.TenantClaim, "must name a claim (e.g. tid)");
        return r.Result();
    }

    private static void Url(Rules r, string name, string? value, bool requireHttps)
    {
        if (string.IsNullOrEmpty(value))
        {
            return;
        }

        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http"))
        {
            r.Fail(name, value, "must be an absolute https:// URL");
        }
        else if (uri.Scheme == "http" && requireHttps)
        {
            r.Fail(name, value, $"must be https:// (set {AuthOptions.Section}:{nameof(AuthOptions.RequireHttpsMetadata)}=false only for a local identity provider)");
        }
    }
}

/// <summary>Every rule of <see cref="NatsOptions"/>; applied in the distributed roles, which use them.</summary>
internal sealed class NatsOptionsValidator : IValidateOptions<NatsOptions>
{
    public ValidateOptionsResult Validate(string? name, NatsOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var o = options;
        var r = new Rules(NatsOptions.Section);
        if (string.IsNullOrWhiteSpace(o.Url))
        {
            r.Fail(nameof(o.Url), o.Url, "the gateway and writer roles need it (e.g. --Nats:Url=nats://127.0.0.1:4222)");
        }
        else
        {
            foreach (var url in o.Url.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                // NATS.Net reads host:port without a scheme as nats://host:port.
                var withScheme = url.Contains("://", StringComparison.Ordinal) ? url : "nats://" + url;
                r.Require(Uri.TryCreate(withScheme, UriKind.Absolute, out var u) && u.Scheme is "nats" or "tls" or "ws" or "wss" && u.Host.Length > 0, nameof(o.Url), o.Url,
                    "must be nats://host:port (or tls://, ws://, wss://, or host:port), several separated by commas");
            }
        }

        r.Require(o.Partitions >= 1, nameof(o.Partitions), o.Partitions, "must be at least 1");
        r.Require(o.PartitionsPerStream >= 1 && (o.Partitions < 1 || o.Partitions % o.PartitionsPerStream == 0), nameof(o.PartitionsPerStream), o.PartitionsPerStream,
            $"must be at least 1 and divide Nats:Partitions ({o.Partitions})");
        r.Require(o.Replicas is >= 1 and <= 5, nameof(o.Replicas), o.Replicas, "must be 1..5");
        r.Require(o.StreamMaxAgeHours >= 0, nameof(o.StreamMaxAgeHours), o.StreamMaxAgeHours, "must be >= 0 (0 keeps events forever)");
        r.Require(o.DuplicateWindowSeconds >= 1, nameof(o.DuplicateWindowSeconds), o.DuplicateWindowSeconds, "must be at least 1");
        r.Require(o.RequestTimeoutMs >= 10, nameof(o.RequestTimeoutMs), o.RequestTimeoutMs, "must be at least 10");
        r.Require(o.CommandDeadlineMs >= o.RequestTimeoutMs, nameof(o.CommandDeadlineMs), o.CommandDeadlineMs, $"must be at least Nats:RequestTimeoutMs ({o.RequestTimeoutMs})");
        r.Require(o.ProjectionMaxLag >= 1, nameof(o.ProjectionMaxLag), o.ProjectionMaxLag, "must be at least 1");
        r.Require(o.ProjectionStallMs >= 100, nameof(o.ProjectionStallMs), o.ProjectionStallMs, "must be at least 100");
        r.Require(o.ProjectionCheckMs is >= 10 and <= 60_000, nameof(o.ProjectionCheckMs), o.ProjectionCheckMs, "must be 10..60000");
        r.Require(o.User is null || o.Password is not null, nameof(o.Password), o.Password, "Nats:User needs a password", secret: true);
        foreach (var (setting, file) in new[] { (nameof(o.TlsCaFile), o.TlsCaFile), (nameof(o.TlsCertFile), o.TlsCertFile), (nameof(o.TlsKeyFile), o.TlsKeyFile) })
        {
            r.Require(file is null || File.Exists(file), setting, file, "the file does not exist");
        }

        return r.Result();
    }
}

/// <summary>Every rule of <see cref="StoreOptions"/>; the Scylla settings are checked only with <c>Kind=scylla</c>.</summary>
internal sealed class StoreOptionsValidator(GatewayRole role) : IValidateOptions<StoreOptions>
{
    public ValidateOptionsResult Validate(string? name, StoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var o = options;
        var r = new Rules(StoreOptions.Section);
        if (!o.IsScylla)
        {
            r.Require(string.Equals(o.Kind, "rocksdb", StringComparison.OrdinalIgnoreCase), nameof(o.Kind), o.Kind, "must be rocksdb or scylla");
            return r.Result();
        }

        r.Require(role != GatewayRole.All, nameof(o.Kind), o.Kind, "the shared Scylla store serves the writer role; the embedded role (--role all) keeps RocksDB");
        var points = o.ContactPoints.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        r.Require(points.Length > 0, nameof(o.ContactPoints), o.ContactPoints, "Store:Kind=scylla needs at least one node (e.g. --Store:ContactPoints=10.0.0.5,10.0.0.6)");
        foreach (var point in points)
        {
            r.Require(Uri.TryCreate("tcp://" + point, UriKind.Absolute, out var u) && u.Host.Length > 0 && u.AbsolutePath == "/", nameof(o.ContactPoints), o.ContactPoints,
                "must be host or host:port, several separated by commas");
        }

        r.Require(o.Port is >= 1 and <= 65535, nameof(o.Port), o.Port, "must be 1..65535");
        try
        {
            _ = ScyllaSchema.Statements(o);
        }
        catch (ArgumentException e)
        {
            r.Fail(e.ParamName == "keyspace" ? nameof(o.Keyspace) : nameof(o.Replication), e.ParamName == "keyspace" ? o.Keyspace : o.Replication, e.Message.Split(" (Parameter", 2)[0]);
        }

        r.Require(o.BucketSize is >= 1 and <= 1_000_000, nameof(o.BucketSize), o.BucketSize, "must be 1..1000000");
        r.Require(o.IdempotencyRetentionHours is >= 24 and <= 24 * 365, nameof(o.IdempotencyRetentionHours), o.IdempotencyRetentionHours, "must be 24..8760 (the protocol promises at least 24 h)");
        r.Require(o.RequestTimeoutMs >= 10, nameof(o.RequestTimeoutMs), o.RequestTimeoutMs, "must be at least 10");
        r.Require(o.ProjectionLeaseMs is >= 1000 and <= 600_000, nameof(o.ProjectionLeaseMs), o.ProjectionLeaseMs, "must be 1000..600000");
        r.Require(string.IsNullOrEmpty(o.Username) || !string.IsNullOrEmpty(o.Password), nameof(o.Password), o.Password, "Store:Username needs a password", secret: true);
        r.Require(string.IsNullOrEmpty(o.TlsCaFile) || File.Exists(o.TlsCaFile), nameof(o.TlsCaFile), o.TlsCaFile, "the file does not exist");
        return r.Result();
    }
}

