using System.Net;
using System.Security.Cryptography;
using Microsoft.IdentityModel.Tokens;

namespace Gateway.Server.Auth;

/// <summary>
/// Where the keys come from, and the rule for development keys: they are generated (in the data directory, with a warning
/// line) only for <c>--role all</c> with both listeners on loopback addresses and no key configured; any other set-up
/// without keys refuses to start. Why this rule rather than a <c>--dev</c> flag: the README's first command
/// (<c>dotnet run --project src/Gateway.Server -c Release</c>, no flags) must work on a fresh machine and its walk-through
/// reads the generated keys, while a server nobody else can reach cannot be attacked with a key nobody else has; every
/// set-up that others can reach (any non-loopback endpoint) or that spans processes (gateway and writer roles, where each
/// pod would otherwise mint its own key) must be given keys.
/// </summary>
internal static class AuthSecrets
{
    public const string Hs256Rule = "must be base64 of at least 32 random bytes (e.g. head -c 32 /dev/urandom | base64)";

    /// <summary>The settings that configure token verification, for the refusal message.</summary>
    public const string KeySettings = "Gateway:Auth:SigningKey (or SigningKeyFile), Gateway:Auth:PublicKeyFiles:0, Gateway:Auth:JwksFile, Gateway:Auth:JwksUrl or Gateway:Auth:Authority";

    public static bool IsHs256Key(string value)
    {
        var bytes = new byte[value.Length];
        return Convert.TryFromBase64String(value, bytes, out var written) && written >= 32;
    }

    /// <summary>The configured HS256 key (inline or from its file), or null.</summary>
    public static string? SigningKey(AuthOptions o) =>
        !string.IsNullOrEmpty(o.SigningKey) ? o.SigningKey
        : !string.IsNullOrEmpty(o.SigningKeyFile) ? File.ReadAllText(o.SigningKeyFile).Trim()
        : null;

    /// <summary>The configured admin key (inline or from its file), or null.</summary>
    public static string? AdminKey(AuthOptions o) =>
        !string.IsNullOrEmpty(o.AdminKey) ? o.AdminKey
        : !string.IsNullOrEmpty(o.AdminKeyFile) ? File.ReadAllText(o.AdminKeyFile).Trim()
        : null;

    /// <summary>True when any token verification key is configured.</summary>
    public static bool HasTokenKeys(AuthOptions o) =>
        !string.IsNullOrEmpty(o.SigningKey) || !string.IsNullOrEmpty(o.SigningKeyFile) || o.PublicKeyFiles.Length > 0
        || !string.IsNullOrEmpty(o.JwksFile) || !string.IsNullOrEmpty(o.JwksUrl) || !string.IsNullOrEmpty(o.Authority);

    public static bool HasAdminKey(AuthOptions o) => !string.IsNullOrEmpty(o.AdminKey) || !string.IsNullOrEmpty(o.AdminKeyFile);

    /// <summary>Whether development keys may be generated: the embedded role, every listener on a loopback address.</summary>
    public static bool DevelopmentKeysAllowed(GatewayOptions g, GatewayRole role) =>
        role == GatewayRole.All && IsLoopback(g.WebSocketEndpoint) && IsLoopback(g.HttpEndpoint);

    /// <summary>The refusals (one line each) when keys are missing and development keys are not allowed.</summary>
    public static IEnumerable<string> Refusals(AuthOptions a, GatewayOptions g, GatewayRole role)
    {
        if (DevelopmentKeysAllowed(g, role))
        {
            yield break;
        }

        var why = role == GatewayRole.All
            ? $"listening on {g.WebSocketEndpoint} and {g.HttpEndpoint} (development keys are generated only when both are loopback addresses)"
            : $"--role {GatewayHost.RoleName(role)} (every pod must verify the same tokens; development keys are generated only for --role all on loopback)";
        if (!HasTokenKeys(a))
        {
            yield return $"no token keys configured for {why}: set {KeySettings}";
        }

        if (!HasAdminKey(a))
        {
            yield return $"no admin key configured for {why}: set Gateway:Auth:AdminKey or Gateway:Auth:AdminKeyFile (a random secret, e.g. head -c 32 /dev/urandom | base64)";
        }
    }

    /// <summary>Reads a PEM RSA or EC public key.</summary>
    /// <exception cref="CryptographicException">Not a PEM RSA or EC key.</exception>
    public static SecurityKey LoadPublicKey(string file)
    {
        var pem = File.ReadAllText(file);
        var ec = ECDsa.Create();
        try
        {
            ec.ImportFromPem(pem);
            return new ECDsaSecurityKey(ec);
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            ec.Dispose();
        }

        var rsa = RSA.Create();
        try
        {
            rsa.ImportFromPem(pem);
            return new RsaSecurityKey(rsa);
        }
        catch
        {
            rsa.Dispose();
            throw;
        }
    }

    /// <summary>Where the token keys and the admin key come from, for the start-up line.</summary>
    public static string Describe(AuthOptions a, GatewayOptions g)
    {
        var parts = new List<string>();
        if (!string.IsNullOrEmpty(a.SigningKey))
        {
            parts.Add("HS256 key from Gateway:Auth:SigningKey");
        }
        else if (!string.IsNullOrEmpty(a.SigningKeyFile))
        {
            parts.Add($"HS256 key from file {a.SigningKeyFile}");
        }

        if (a.PublicKeyFiles.Length > 0)
        {
            parts.Add($"RS256/ES256 public keys from {string.Join(", ", a.PublicKeyFiles)}");
        }

        if (!string.IsNullOrEmpty(a.JwksFile))
        {
            parts.Add($"JWKS file {a.JwksFile}");
        }

        if (!string.IsNullOrEmpty(a.JwksUrl))
        {
            parts.Add($"JWKS {a.JwksUrl} (refreshed every {a.KeysRefreshSeconds} s and on an unknown kid, at most every {a.KeysMinRefreshSeconds} s)");
        }

        if (!string.IsNullOrEmpty(a.Authority))
        {
            parts.Add($"OpenID Connect discovery at {a.Authority} (refreshed every {a.KeysRefreshSeconds} s and on an unknown kid, at most every {a.KeysMinRefreshSeconds} s)");
        }

        if (parts.Count == 0)
        {
            parts.Add($"DEVELOPMENT HS256 key {Path.Combine(Path.GetFullPath(g.DataDirectory), "dev-signing.key")}");
        }

        parts.Add(!string.IsNullOrEmpty(a.AdminKey) ? "admin key from Gateway:Auth:AdminKey"
            : !string.IsNullOrEmpty(a.AdminKeyFile) ? $"admin key from file {a.AdminKeyFile}"
            : $"DEVELOPMENT admin key {Path.Combine(Path.GetFullPath(g.DataDirectory), "admin.key")}");
        return string.Join("; ", parts);
    }

    private static bool IsLoopback(string endpoint) => IPEndPoint.TryParse(endpoint, out var e) && IPAddress.IsLoopback(e.Address);
}
