using System.Net.Http.Headers;
using System.Net.Http.Json;
using Gateway.Server.Auth;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Gateway.Server.Tests;

/// <summary>A real embedded gateway (Kestrel on port 0, RocksDB in a temp directory) for one test.</summary>
public sealed class TestGateway : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly bool _ownsDirectory;

    private TestGateway(WebApplication app, string dataDirectory, bool ownsDirectory)
    {
        _app = app;
        DataDirectory = dataDirectory;
        _ownsDirectory = ownsDirectory;
        var endpoints = app.Services.GetRequiredService<GatewayEndpoints>();
        WebSocketUri = endpoints.WebSocketUri;
        HttpUri = endpoints.HttpUri;
        SigningKey = app.Services.GetRequiredService<JwtAuthenticator>().SigningKey!;
        AdminKey = AuthSecrets.AdminKey(app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<AuthOptions>>().Value)
            ?? File.ReadAllText(Path.Combine(dataDirectory, "admin.key")).Trim();
        Http = new HttpClient { BaseAddress = HttpUri, Timeout = TimeSpan.FromSeconds(30) };
    }

    public string DataDirectory { get; }

    public Uri WebSocketUri { get; }

    public Uri HttpUri { get; }

    public string AdminKey { get; }

    public HttpClient Http { get; }

    public IServiceProvider Services => _app.Services;

    internal Microsoft.IdentityModel.Tokens.SymmetricSecurityKey SigningKey { get; }

    public static async Task<TestGateway> StartAsync(string? dataDirectory = null, params string[] extraArgs)
    {
        var owns = dataDirectory is null;
        dataDirectory ??= NewTempDirectory();
        string[] args =
        [
            "--Gateway:WebSocketEndpoint=127.0.0.1:0",
            "--Gateway:HttpEndpoint=127.0.0.1:0",
            $"--Gateway:DataDirectory={dataDirectory}",
            "--Logging:LogLevel:Default=Warning",

            // Stopping a test gateway should not wait out a production drain; drain tests set their own grace.
            "--Gateway:DrainGraceSeconds=0",
            .. extraArgs,
        ];
        var app = GatewayHost.Build(args);
        await app.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
        return new TestGateway(app, dataDirectory, owns);
    }

    public static string NewTempDirectory()
    {
        var dir = Path.Combine(Path.GetTempPath(), "gw-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    public string Token(string userId, string tenantId = "t1", TimeSpan? lifetime = null) =>
        JwtAuthenticator.Mint(SigningKey, tenantId, userId, lifetime ?? TimeSpan.FromHours(1));

    public async Task CreateChatAsync(string chatId, params string[] members) => await CreateChatAsync("t1", chatId, members);

    public async Task CreateChatAsync(string tenantId, string chatId, string[] members)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/admin/tenants/{tenantId}/chats")
        {
            Content = JsonContent.Create(new { chatId, members }),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        using var response = await Http.SendAsync(request);
        Assert.Equal(System.Net.HttpStatusCode.Created, response.StatusCode);
    }

    public async Task RemoveMemberAsync(string chatId, string userId, string tenantId = "t1")
    {
        using var request = new HttpRequestMessage(HttpMethod.Delete, $"/v1/admin/tenants/{tenantId}/chats/{chatId}/members/{userId}");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        using var response = await Http.SendAsync(request);
        Assert.Equal(System.Net.HttpStatusCode.NoContent, response.StatusCode);
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _app.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await _app.DisposeAsync();
        if (_ownsDirectory)
        {
            try
            {
                Directory.Delete(DataDirectory, recursive: true);
            }
            catch (IOException)
            {
                // best effort
            }
        }
    }
}
