using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Gateway.LoadGen.Targets;

/// <summary>
/// Our gateway (<c>chatgw.v1</c>). Rooms are chats created through the admin HTTP API; tokens are HS256 JWTs minted
/// here with the server's signing key, so no token round trip is on the connect path.
/// </summary>
public sealed class GatewayTarget : ILoadTarget
{
    private static readonly byte[] JwtHeader = Encoding.UTF8.GetBytes("""{"alg":"HS256","typ":"JWT"}""");
    private readonly TargetSettings _settings;
    private readonly byte[]? _key;
    private readonly Lazy<HttpClient> _http;

    /// <summary>A target for the gateway described by <paramref name="settings"/>.</summary>
    public GatewayTarget(TargetSettings settings)
    {
        _settings = settings;
        _key = settings.SigningKey is { } k ? Convert.FromBase64String(k) : null;
        _http = new Lazy<HttpClient>(() => new HttpClient
        {
            BaseAddress = settings.HttpEndpoint ?? throw new InvalidOperationException("The gateway target needs --http (admin API)."),
            Timeout = TimeSpan.FromSeconds(60),
        });
    }

    /// <inheritdoc/>
    public string Name => "gateway";

    /// <inheritdoc/>
    public bool HasServerSeq => true;

    /// <inheritdoc/>
    public ILoadConnection Create() => new GatewayConnection();

    /// <inheritdoc/>
    public async Task CreateRoomAsync(string room, IReadOnlyList<string> members, CancellationToken ct)
    {
        // The admin API adds members to an existing chat, so big rooms go in slices that keep each body small.
        const int slice = 1000;
        for (var i = 0; i < Math.Max(1, members.Count); i += slice)
        {
            var part = members.Skip(i).Take(slice).ToArray();
            using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/admin/tenants/{_settings.Tenant}/chats")
            {
                Content = JsonContent.Create(new { chatId = room, members = part }),
            };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _settings.AdminKey);
            using var response = await _http.Value.SendAsync(request, ct).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                var body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
                throw new HttpRequestException($"creating chat {room}: HTTP {(int)response.StatusCode} {body}");
            }
        }
    }

    /// <inheritdoc/>
    public string? TokenFor(string userId) =>
        _key is null ? throw new InvalidOperationException("The gateway target needs --signing-key to mint tokens.") : Mint(_key, _settings.Tenant, userId, TimeSpan.FromHours(12));

    /// <summary>An HS256 JWT with <c>sub</c>, <c>tid</c>, <c>iat</c>, <c>nbf</c>, <c>exp</c>: what the server's token command mints.</summary>
    public static string Mint(byte[] key, string tenant, string userId, TimeSpan lifetime)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var claims = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["sub"] = userId,
            ["tid"] = tenant,
            ["iat"] = now,
            ["nbf"] = now - 5,
            ["exp"] = now + (long)lifetime.TotalSeconds,
        });
        var signingInput = Base64Url(JwtHeader) + "." + Base64Url(claims);
        var signature = HMACSHA256.HashData(key, Encoding.ASCII.GetBytes(signingInput));
        return signingInput + "." + Base64Url(signature);
    }

    private static string Base64Url(ReadOnlySpan<byte> bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
