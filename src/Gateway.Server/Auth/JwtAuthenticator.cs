using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Gateway.Server.Auth;

/// <summary>
/// Validates JWTs: HS256 with a shared key (development), RS256/ES256 with configured PEM public keys or a JWKS
/// file (production). <c>exp</c> is required; <c>iss</c>/<c>aud</c> are checked when configured.
/// </summary>
public sealed class JwtAuthenticator
{
    private static readonly string[] Algorithms =
        [SecurityAlgorithms.HmacSha256, SecurityAlgorithms.RsaSha256, SecurityAlgorithms.EcdsaSha256];

    /// <summary>Most distinct tenant ids whose strings are shared (<see cref="ShareTenant"/>): 4,096 short ids are about
    /// 250 KiB of table and strings, a bound on what a token issuer with ever more tenants can make this cache hold.</summary>
    internal const int MaxSharedTenants = 4096;

    private readonly JsonWebTokenHandler _handler = new();
    private readonly TokenValidationParameters _base;
    private readonly List<SecurityKey> _localKeys;
    private readonly string _tenantClaim;
    private readonly ConcurrentDictionary<string, string> _tenants = new(StringComparer.Ordinal);
    private volatile TokenValidationParameters _parameters;
    private int _tenantCount;

    /// <summary>Loads keys from configuration (and the data directory for the development key); keys from a JWKS URL or
    /// OpenID Connect discovery arrive through <see cref="Remote"/> once the host starts.</summary>
    public JwtAuthenticator(IOptions<AuthOptions> auth, IOptions<GatewayOptions> gateway, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(auth);
        ArgumentNullException.ThrowIfNull(gateway);
        var options = auth.Value;
        _tenantClaim = options.TenantClaim;
        _localKeys = LoadKeys(options, gateway.Value.DataDirectory);
        _base = new TokenValidationParameters
        {
            ValidAlgorithms = Algorithms,
            ValidateIssuer = options.Issuer is not null,
            ValidIssuer = options.Issuer,
            ValidateAudience = options.Audience is not null,
            ValidAudience = options.Audience,
            ValidateLifetime = true,
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            ClockSkew = TimeSpan.FromSeconds(options.ClockSkewSeconds),
        };
        _parameters = WithKeys(_localKeys, null);
        SigningKey = _localKeys.OfType<SymmetricSecurityKey>().FirstOrDefault();
        if (!string.IsNullOrEmpty(options.JwksUrl) || !string.IsNullOrEmpty(options.Authority))
        {
            Remote = new RemoteSigningKeys(options, time ?? TimeProvider.System,
                (keys, issuer) => _parameters = WithKeys([.. _localKeys, .. keys], options.Issuer is null ? issuer : null));
        }
    }

    /// <summary>The HS256 key, for minting development tokens; null in production setups without one.</summary>
    public SymmetricSecurityKey? SigningKey { get; }

    /// <summary>Keys from a JWKS URL or OpenID Connect discovery, when configured.</summary>
    internal RemoteSigningKeys? Remote { get; }

    /// <summary>Validates a token: the principal, or null and a reason when it is not acceptable.</summary>
    /// <remarks>Completes synchronously, without allocating a task, unless the token names a key id we do not have while
    /// remote keys are configured: then at most one caller per <see cref="AuthOptions.KeysMinRefreshSeconds"/> awaits
    /// (bounded) a key fetch, and every other unknown key id is refused at once. No thread ever blocks on it: the
    /// handshake, the HTTP API and the in-band token refresh all await it.</remarks>
    public async ValueTask<(Principal? Principal, string? Failure)> ValidateAsync(string? token)
    {
        if (string.IsNullOrEmpty(token))
        {
            return (null, "missing token");
        }

        var parameters = _parameters;
        var result = ValidateWithKeysInMemory(token, parameters);
        if (!result.IsValid && Remote is { } remote && HasUnknownKeyId(token, parameters) &&
            await remote.RefreshForUnknownKeyAsync().ConfigureAwait(false))
        {
            result = ValidateWithKeysInMemory(token, _parameters);
        }

        var principal = ToPrincipal(result, out var failure);
        return (principal, failure);
    }

    /// <summary>
    /// Starts the library's validation. It completes synchronously: <see cref="JsonWebTokenHandler"/> awaits only to
    /// fetch configuration through <see cref="TokenValidationParameters.ConfigurationManager"/>, which is never set here
    /// (local keys are loaded at start, remote ones by <see cref="RemoteSigningKeys"/> apart from validation).
    /// AuthTests checks this for valid, expired, badly signed and malformed tokens.
    /// </summary>
    internal Task<TokenValidationResult> StartValidation(string token, TokenValidationParameters? parameters = null) =>
        _handler.ValidateTokenAsync(token, parameters ?? _parameters);

    /// <summary>The result of <see cref="StartValidation"/>, read without blocking: should a library update ever make
    /// it truly asynchronous, the token is refused (and the tests above fail) rather than a thread blocked on it.</summary>
    private TokenValidationResult ValidateWithKeysInMemory(string token, TokenValidationParameters parameters)
    {
        var validation = StartValidation(token, parameters);
        return validation.IsCompleted
            ? validation.GetAwaiter().GetResult()
            : new TokenValidationResult { IsValid = false, Exception = new SecurityTokenException("validation did not complete synchronously") };
    }

    private Principal? ToPrincipal(TokenValidationResult result, out string? failure)
    {
        if (!result.IsValid)
        {
            failure = result.Exception switch
            {
                SecurityTokenExpiredException => "token expired",
                SecurityTokenInvalidSignatureException or SecurityTokenSignatureKeyNotFoundException => "bad signature",
                _ => "invalid token",
            };
            return null;
        }

        var jwt = (JsonWebToken)result.SecurityToken;
        var tenant = result.Claims.TryGetValue(_tenantClaim, out var t) ? t as string : null;
        var user = jwt.Subject;
        if (tenant is null || !Gateway.Domain.Validation.IsValidId(tenant))
        {
            failure = $"claim '{_tenantClaim}' missing or not a valid tenant id";
            return null;
        }

        if (string.IsNullOrEmpty(user) || !Gateway.Domain.Validation.IsValidUserId(user))
        {
            failure = "claim 'sub' missing or not a valid user id";
            return null;
        }

        failure = null;
        return new Principal(ShareTenant(tenant), user, new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero).ToUnixTimeMilliseconds());
    }

    /// <summary>
    /// One string instance per tenant id: a server serves few tenants with many users each, and every connection keeps
    /// its tenant id for its whole life (session, subscriptions, limiter key), so each would otherwise hold its own copy
    /// decoded from its token. Past <see cref="MaxSharedTenants"/> distinct tenants, new ones keep
    /// their own copies.
    /// </summary>
    private string ShareTenant(string tenant)
    {
        if (_tenants.TryGetValue(tenant, out var shared))
        {
            return shared;
        }

        // Counted apart from the dictionary: its Count takes every lock, and this path runs once per new tenant until
        // the cap, then for every connection of a tenant beyond it. Racing adds may pass the cap by a few entries.
        if (Volatile.Read(ref _tenantCount) >= MaxSharedTenants)
        {
            return tenant;
        }

        if (_tenants.TryAdd(tenant, tenant))
        {
            Interlocked.Increment(ref _tenantCount);
            return tenant;
        }

        return _tenants.TryGetValue(tenant, out shared) ? shared : tenant;
    }

    /// <summary>Mints an HS256 development token.</summary>
    public static string Mint(SymmetricSecurityKey key, string tenantId, string userId, TimeSpan lifetime, string tenantClaim = "tid")
    {
        var now = DateTime.UtcNow;
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Subject = null,
            Claims = new Dictionary<string, object> { ["sub"] = userId, [tenantClaim] = tenantId },
            IssuedAt = now,
            NotBefore = now,
            Expires = now + lifetime,
            SigningCredentials = new SigningCredentials(key, SecurityAlgorithms.HmacSha256),
        });
    }

    /// <summary>True when the token's header names a key id that none of the current keys has.</summary>
    private static bool HasUnknownKeyId(string token, TokenValidationParameters parameters)
    {
        string? kid;
        try
        {
            kid = new JsonWebToken(token).Kid;
        }
        catch (ArgumentException)
        {
            return false;
        }

        return !string.IsNullOrEmpty(kid) && !(parameters.IssuerSigningKeys ?? []).Any(k => string.Equals(k.KeyId, kid, StringComparison.Ordinal));
    }

    private TokenValidationParameters WithKeys(List<SecurityKey> keys, string? discoveredIssuer)
    {
        var p = _base.Clone();
        p.IssuerSigningKeys = keys;
        if (discoveredIssuer is not null)
        {
            p.ValidateIssuer = true;
            p.ValidIssuer = discoveredIssuer;
        }

        return p;
    }

    private static List<SecurityKey> LoadKeys(AuthOptions options, string dataDirectory)
    {
        var keys = new List<SecurityKey>();
        foreach (var file in options.PublicKeyFiles)
        {
            keys.Add(AuthSecrets.LoadPublicKey(file));
        }

        if (options.JwksFile is { Length: > 0 } jwks)
        {
            keys.AddRange(new JsonWebKeySet(File.ReadAllText(jwks)).GetSigningKeys());
        }

        // Development keys only when nothing is configured; start-up validation (AuthSecrets.Refusals) has already refused
        // every set-up where that is not allowed.
        var hs = AuthSecrets.SigningKey(options);
        if (string.IsNullOrEmpty(hs) && !AuthSecrets.HasTokenKeys(options))
        {
            hs = DevKeys.GetOrCreate(dataDirectory, "dev-signing.key");
        }

        if (!string.IsNullOrEmpty(hs))
        {
            if (!AuthSecrets.IsHs256Key(hs))
            {
                throw new InvalidOperationException($"Gateway:Auth:SigningKey {AuthSecrets.Hs256Rule}.");
            }

            keys.Add(new SymmetricSecurityKey(Convert.FromBase64String(hs)));
        }

        return keys;
    }
}
