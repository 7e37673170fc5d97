using System.Net.Http.Headers;
using System.Net.Http.Json;
using Gateway.Tools.Common;

namespace Gateway.LoadGen.Targets;

/// <summary>
/// Our gateway (<c>chatgw.v1</c>). Rooms are chats created through the admin HTTP API; tokens are HS256 JWTs minted
/// by the tool (<see cref="Tokens"/>) with the server's signing key, so no token round trip is on the connect path.
/// </summary>
public sealed class GatewayTarget : ILoadTarget
{
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
        _key is null ? throw new InvalidOperationException("The gateway target needs --signing-key to mint tokens.") : Tokens.Mint(_key, _settings.Tenant, userId, TimeSpan.FromHours(12));
}
