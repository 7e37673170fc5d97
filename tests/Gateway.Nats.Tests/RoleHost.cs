using System.Net.Http.Headers;
using System.Net.Http.Json;
using Gateway.Server;
using Gateway.Server.Auth;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Tokens;

namespace Gateway.Nats.Tests;

/// <summary>One process role (<c>--role gateway</c> or <c>--role writer</c>) hosted in the test process with its own
/// Kestrel listeners on port 0, connected to a real nats-server.</summary>
public sealed class RoleHost : IAsyncDisposable
{
    /// <summary>One HS256 key and admin key for every host of a test: a client's token works on any gateway.</summary>
    public static readonly string SigningKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    public const string AdminKey = "test-admin-key";

    private readonly WebApplication _app;
    private readonly string _dataDirectory;

    private RoleHost(WebApplication app, string dataDirectory)
    {
        _app = app;
        _dataDirectory = dataDirectory;
        var endpoints = app.Services.GetRequiredService<GatewayEndpoints>();
        WebSocketUri = endpoints.WebSocketUri;
        Http = new HttpClient { BaseAddress = endpoints.HttpUri, Timeout = TimeSpan.FromSeconds(30) };
    }

    public Uri WebSocketUri { get; }

    public HttpClient Http { get; }

    /// <summary>The body of the last failed HTTP send (for assertion messages).</summary>
    public string? LastError { get; private set; }

    public IServiceProvider Services => _app.Services;

    public static Task<RoleHost> StartGatewayAsync(string natsUrl, params string[] extra) => StartAsync("gateway", natsUrl, null, extra);

    public static Task<RoleHost> StartWriterAsync(string natsUrl, string nodeId, string? dataDirectory = null, params string[] extra) =>
        StartAsync("writer", natsUrl, dataDirectory, [$"--Nats:NodeId={nodeId}", .. extra]);

    public static string Token(string userId, string tenantId = "t1") =>
        JwtAuthenticator.Mint(new SymmetricSecurityKey(Convert.FromBase64String(SigningKey)), tenantId, userId, TimeSpan.FromHours(1));

    private static async Task<RoleHost> StartAsync(string role, string natsUrl, string? dataDirectory, string[] extra)
    {
        dataDirectory ??= NatsServer.TempDirectory(role);
        string[] args =
        [
            "--role", role,
            $"--Nats:Url={natsUrl}",
            "--Gateway:WebSocketEndpoint=127.0.0.1:0",
            "--Gateway:HttpEndpoint=127.0.0.1:0",
            $"--Gateway:DataDirectory={dataDirectory}",
            $"--Gateway:Auth:SigningKey={SigningKey}",
            $"--Gateway:Auth:AdminKey={AdminKey}",
            "--Gateway:DrainGraceSeconds=0",
            "--Gateway:SendsPerSecond=100000",
            "--Gateway:SendBurst=100000",
            "--Logging:LogLevel:Default=Warning",
            .. extra,
        ];
        var app = GatewayHost.Build(args);
        await app.StartAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return new RoleHost(app, dataDirectory);
    }

    public async Task CreateChatAsync(string chatId, params string[] members)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/admin/tenants/t1/chats") { Content = JsonContent.Create(new { chatId, members }) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        using var response = await Http.SendAsync(request);
        Assert.Equal(System.Net.HttpStatusCode.Created, response.StatusCode);
    }

    public async Task RemoveMemberAsync(string chatId, string userId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Delete, $"/v1/admin/tenants/t1/chats/{chatId}/members/{userId}");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        using var response = await Http.SendAsync(request);
        Assert.Equal(System.Net.HttpStatusCode.NoContent, response.StatusCode);
    }

    /// <summary>Sends through the HTTP API on a user's behalf (BFF send): (status, seq, duplicate).</summary>
    public async Task<(int Status, ulong Seq, bool Duplicate)> SendHttpAsync(string chatId, string userId, string idempotencyKey, string text)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/chats/{chatId}/messages")
        {
            Content = JsonContent.Create(new { contentType = "text/plain", text }),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token(userId));
        request.Headers.Add("Idempotency-Key", idempotencyKey);
        using var response = await Http.SendAsync(request);
        if (!response.IsSuccessStatusCode)
        {
            LastError = await response.Content.ReadAsStringAsync();
            return ((int)response.StatusCode, 0, false);
        }

        var body = await response.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>();
        return ((int)response.StatusCode, body.GetProperty("seq").GetUInt64(), body.GetProperty("duplicate").GetBoolean());
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _app.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await _app.DisposeAsync();
        try
        {
            Directory.Delete(_dataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>The common distributed set-up: one nats-server, one writer, gateways A and B, and chat <c>c1</c> with alice
/// and bob. Disposes in reverse order of start.</summary>
public sealed class TwoGateways : IAsyncDisposable
{
    private TwoGateways(NatsServer nats, RoleHost writer, RoleHost gatewayA, RoleHost gatewayB)
    {
        Nats = nats;
        Writer = writer;
        GatewayA = gatewayA;
        GatewayB = gatewayB;
    }

    public NatsServer Nats { get; }

    public RoleHost Writer { get; }

    public RoleHost GatewayA { get; }

    public RoleHost GatewayB { get; }

    public static async Task<TwoGateways> StartAsync()
    {
        var nats = await NatsServer.StartAsync();
        var writer = await RoleHost.StartWriterAsync(nats.Url, "w1");
        var a = await RoleHost.StartGatewayAsync(nats.Url);
        var b = await RoleHost.StartGatewayAsync(nats.Url);
        await a.CreateChatAsync("c1", "alice", "bob");
        return new TwoGateways(nats, writer, a, b);
    }

    public async ValueTask DisposeAsync()
    {
        await GatewayB.DisposeAsync();
        await GatewayA.DisposeAsync();
        await Writer.DisposeAsync();
        await Nats.DisposeAsync();
    }
}
