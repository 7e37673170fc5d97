using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using Gateway.Protocol;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Gateway.Server.Tests;

/// <summary>Signing keys from a JWKS URL or OpenID Connect discovery, served by a real local HTTP server (Kestrel on port
/// 0) that rotates its keys while clients connect.</summary>
public sealed class JwksTests
{
    [Fact]
    public async Task A_rotated_in_key_is_accepted_after_the_forced_refresh_and_a_removed_key_stops_validating()
    {
        await using var idp = await IdentityProvider.StartAsync();
        var a = idp.AddKey("key-a");
        await using var gw = await StartGatewayAsync(idp, "--Gateway:Auth:KeysMinRefreshSeconds=1");
        Assert.Equal(1, idp.JwksRequests);
        await gw.CreateChatAsync("c1", "alice", "bob");

        await using var alice = await WsClient.ConnectAsync(gw.WebSocketUri, idp.Token(a, "alice"));

        // The issuer rotates: key B in, key A out. A token signed with B names a kid the gateway has not seen.
        var b = idp.AddKey("key-b");
        idp.RemoveKey("key-a");
        await using var bob = await WsClient.ConnectAsync(gw.WebSocketUri, idp.Token(b, "bob"));
        Assert.Equal("bob", bob.Hello.UserId);
        Assert.Equal(2, idp.JwksRequests);

        // The connection opened with key A is not dropped: it still sends and is acknowledged.
        var request = await alice.SendTextAsync("c1", "still here");
        var ack = await alice.ReceiveAsync<SendAckFrame>();
        Assert.Equal(request, ack.RequestId);

        // A new connection with key A is refused: A left the set with that fetch.
        var (status, _) = await WsClient.ConnectRefusedAsync(gw.WebSocketUri, idp.Token(a, "alice"));
        Assert.Equal(401, status);
        Assert.Equal(401, (int)await HistoryStatusAsync(gw, idp.Token(a, "alice")));
        Assert.Equal(200, (int)await HistoryStatusAsync(gw, idp.Token(b, "alice")));
    }

    [Fact]
    public async Task A_handshake_that_waits_for_a_key_fetch_waits_without_a_thread_and_completes_when_the_keys_arrive()
    {
        await using var idp = await IdentityProvider.StartAsync();
        idp.AddKey("key-a");
        await using var gw = await StartGatewayAsync(idp, "--Gateway:Auth:KeysMinRefreshSeconds=3600");

        // The issuer is slow to answer: the handshake naming a new key waits for the fetch.
        var b = idp.AddKey("key-b");
        idp.HoldJwks();
        var bob = WsClient.ConnectAsync(gw.WebSocketUri, idp.Token(b, "bob"));
        await Poll.UntilAsync(() => idp.JwksRequests == 2, "the handshake never fetched the keys");
        Assert.False(bob.IsCompleted);
        idp.ReleaseJwks();
        await using (var connected = await bob)
        {
            Assert.Equal("bob", connected.Hello.UserId);
        }

        // Underneath (another gateway, so a rate-limit window of its own): the validation hands control back while the
        // fetch is outstanding, an incomplete task rather than a blocked caller, and finds the key once the issuer answers.
        await using var other = await StartGatewayAsync(idp, "--Gateway:Auth:KeysMinRefreshSeconds=3600");
        var auth = other.Services.GetRequiredService<Gateway.Server.Auth.JwtAuthenticator>();
        var c = idp.AddKey("key-c");
        idp.HoldJwks();
        var validation = auth.ValidateAsync(idp.Token(c, "carol"));
        Assert.False(validation.IsCompleted);
        idp.ReleaseJwks();
        Assert.Equal("carol", (await validation).Principal?.UserId);
    }

    [Fact]
    public async Task Unknown_key_ids_cause_at_most_one_fetch_per_rate_limit_window()
    {
        await using var idp = await IdentityProvider.StartAsync();
        var a = idp.AddKey("key-a");
        await using var gw = await StartGatewayAsync(idp, "--Gateway:Auth:KeysMinRefreshSeconds=3600");
        await gw.CreateChatAsync("c1", "alice");
        Assert.Equal(1, idp.JwksRequests);

        // The first unknown kid fetches (and finds the new key).
        var b = idp.AddKey("key-b");
        Assert.Equal(HttpStatusCode.OK, await HistoryStatusAsync(gw, idp.Token(b, "alice")));
        Assert.Equal(2, idp.JwksRequests);

        // Within the window, neither a key the issuer really added nor made-up key ids cause another fetch.
        var c = idp.AddKey("key-c");
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, await HistoryStatusAsync(gw, idp.Token(c, "alice")));
            using var forged = RSA.Create(2048);
            Assert.Equal(HttpStatusCode.Unauthorized, await HistoryStatusAsync(gw, idp.Token(new RsaSecurityKey(forged) { KeyId = $"made-up-{i}" }, "alice")));
        }

        Assert.Equal(2, idp.JwksRequests);
        Assert.Equal(HttpStatusCode.OK, await HistoryStatusAsync(gw, idp.Token(a, "alice")));
    }

    [Fact]
    public async Task Keys_are_refreshed_periodically_so_a_removed_key_stops_validating_without_any_unknown_kid()
    {
        await using var idp = await IdentityProvider.StartAsync();
        var a = idp.AddKey("key-a");
        var b = idp.AddKey("key-b");
        await using var gw = await StartGatewayAsync(idp, "--Gateway:Auth:KeysRefreshSeconds=1", "--Gateway:Auth:KeysMinRefreshSeconds=3600");
        await gw.CreateChatAsync("c1", "alice");
        Assert.Equal(HttpStatusCode.OK, await HistoryStatusAsync(gw, idp.Token(a, "alice")));

        idp.RemoveKey("key-a");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (await HistoryStatusAsync(gw, idp.Token(a, "alice")) == HttpStatusCode.OK)
        {
            Assert.True(DateTime.UtcNow < deadline, "key A still validates 30 s after it left the JWKS");
            await Task.Delay(100);
        }

        Assert.True(idp.JwksRequests >= 2);
        Assert.Equal(HttpStatusCode.OK, await HistoryStatusAsync(gw, idp.Token(b, "alice")));
    }

    [Fact]
    public async Task A_key_set_without_signing_keys_is_a_failed_fetch_and_keeps_the_keys_we_have()
    {
        await using var idp = await IdentityProvider.StartAsync();
        var a = idp.AddKey("key-a");
        await using var gw = await StartGatewayAsync(idp, "--Gateway:Auth:KeysRefreshSeconds=1", "--Gateway:Auth:KeysMinRefreshSeconds=3600");
        await gw.CreateChatAsync("c1", "alice");

        // The issuer serves {"keys":[]} (mid-deployment, or a wrong URL): two periodic fetches later key A still validates.
        idp.RemoveKey("key-a");
        var fetched = idp.JwksRequests;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (idp.JwksRequests < fetched + 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "no periodic fetch within 30 s");
            await Task.Delay(100);
        }

        Assert.Equal(HttpStatusCode.OK, await HistoryStatusAsync(gw, idp.Token(a, "alice")));
    }

    [Fact]
    public async Task OpenID_Connect_discovery_gives_the_keys_and_the_required_issuer()
    {
        await using var idp = await IdentityProvider.StartAsync();
        var a = idp.AddKey("key-a");
        await using var gw = await TestGateway.StartAsync(null, $"--Gateway:Auth:Authority={idp.Issuer}", "--Gateway:Auth:RequireHttpsMetadata=false",
            "--Gateway:Auth:AdminKey=admin-key-for-tests");
        Assert.Equal(1, idp.DiscoveryRequests);
        Assert.Equal(1, idp.JwksRequests);
        await gw.CreateChatAsync("c1", "alice");
        Assert.Equal(HttpStatusCode.OK, await HistoryStatusAsync(gw, idp.Token(a, "alice")));
        Assert.Equal(HttpStatusCode.Unauthorized, await HistoryStatusAsync(gw, idp.Token(a, "alice", issuer: "https://someone-else.example")));

        // Rotation through discovery: the unknown kid refetches the document and the JWKS.
        var b = idp.AddKey("key-b");
        Assert.Equal(HttpStatusCode.OK, await HistoryStatusAsync(gw, idp.Token(b, "alice")));
        Assert.Equal(2, idp.JwksRequests);
    }

    private static Task<TestGateway> StartGatewayAsync(IdentityProvider idp, params string[] extra) =>
        TestGateway.StartAsync(null, [$"--Gateway:Auth:JwksUrl={idp.JwksUrl}", "--Gateway:Auth:RequireHttpsMetadata=false",
            "--Gateway:Auth:AdminKey=admin-key-for-tests", .. extra]);

    private static async Task<HttpStatusCode> HistoryStatusAsync(TestGateway gw, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/chats/c1/messages");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await gw.Http.SendAsync(request);
        return response.StatusCode;
    }

    /// <summary>A minimal issuer: a JWKS document and a discovery document on a real Kestrel, counting requests.</summary>
    private sealed class IdentityProvider : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly ConcurrentDictionary<string, RsaSecurityKey> _keys = new();
        private int _jwksRequests;
        private int _discoveryRequests;
        private TaskCompletionSource _jwksGate = CompletedGate();

        private IdentityProvider(WebApplication app) => _app = app;

        public string Issuer { get; private set; } = "";

        public string JwksUrl => Issuer + "/jwks";

        public int JwksRequests => Volatile.Read(ref _jwksRequests);

        public int DiscoveryRequests => Volatile.Read(ref _discoveryRequests);

        public static async Task<IdentityProvider> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Logging.ClearProviders();
            var app = builder.Build();
            var idp = new IdentityProvider(app);
            app.MapGet("/jwks", async () =>
            {
                Interlocked.Increment(ref idp._jwksRequests);
                await Volatile.Read(ref idp._jwksGate).Task;
                return Results.Text(idp.Jwks(), "application/json");
            });
            app.MapGet("/.well-known/openid-configuration", () =>
            {
                Interlocked.Increment(ref idp._discoveryRequests);
                return Results.Text(JsonSerializer.Serialize(new Dictionary<string, object> { ["issuer"] = idp.Issuer, ["jwks_uri"] = idp.JwksUrl }), "application/json");
            });
            await app.StartAsync();
            idp.Issuer = app.Urls.First().TrimEnd('/');
            return idp;
        }

        public RsaSecurityKey AddKey(string kid)
        {
            var key = new RsaSecurityKey(RSA.Create(2048)) { KeyId = kid };
            _keys[kid] = key;
            return key;
        }

        public void RemoveKey(string kid) => _keys.TryRemove(kid, out _);

        /// <summary>JWKS requests from now on wait until <see cref="ReleaseJwks"/>.</summary>
        public void HoldJwks() => Volatile.Write(ref _jwksGate, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

        public void ReleaseJwks() => Volatile.Read(ref _jwksGate).TrySetResult();

        private static TaskCompletionSource CompletedGate()
        {
            var gate = new TaskCompletionSource();
            gate.SetResult();
            return gate;
        }

        public string Token(RsaSecurityKey key, string user, string? issuer = null)
        {
            var now = DateTime.UtcNow;
            return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
            {
                Claims = new Dictionary<string, object> { ["sub"] = user, ["tid"] = "t1" },
                Issuer = issuer ?? Issuer,
                IssuedAt = now,
                NotBefore = now,
                Expires = now.AddMinutes(10),
                SigningCredentials = new SigningCredentials(key, SecurityAlgorithms.RsaSha256),
            });
        }

        private string Jwks()
        {
            var keys = _keys.Values.Select(k =>
            {
                var p = k.Rsa.ExportParameters(false);
                return new Dictionary<string, string>
                {
                    ["kty"] = "RSA",
                    ["use"] = "sig",
                    ["alg"] = "RS256",
                    ["kid"] = k.KeyId,
                    ["n"] = Base64UrlEncoder.Encode(p.Modulus),
                    ["e"] = Base64UrlEncoder.Encode(p.Exponent),
                };
            });
            return JsonSerializer.Serialize(new { keys });
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
