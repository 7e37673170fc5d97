using System.Net;
using System.Net.Http.Headers;
using Gateway.Server.Auth;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace Gateway.Server.Tests;

/// <summary>Safe auth defaults: development keys only for the embedded role on loopback endpoints; everything else must be
/// given keys, inline or from files.</summary>
public sealed class ConfigAuthTests
{
    [Theory]
    [InlineData("--Gateway:WebSocketEndpoint=0.0.0.0:0")]
    [InlineData("--Gateway:HttpEndpoint=0.0.0.0:0")]
    public void A_reachable_embedded_server_without_keys_refuses_and_names_the_settings(string endpoint)
    {
        var dir = TestGateway.NewTempDirectory();
        var e = Assert.Throws<OptionsValidationException>(() => GatewayHost.Build(
            ["--Gateway:WebSocketEndpoint=127.0.0.1:0", "--Gateway:HttpEndpoint=127.0.0.1:0", $"--Gateway:DataDirectory={dir}", endpoint]));
        Assert.Equal(2, e.Failures.Count());
        Assert.Contains(e.Failures, f => f.Contains("Gateway:Auth:SigningKey", StringComparison.Ordinal) && f.Contains("Gateway:Auth:JwksUrl", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.Contains("Gateway:Auth:AdminKey", StringComparison.Ordinal));
        Assert.False(File.Exists(Path.Combine(dir, "dev-signing.key")), "no development key may be generated");
        Directory.Delete(dir, recursive: true);
    }

    [Theory]
    [InlineData("gateway")]
    [InlineData("writer")]
    public void Distributed_roles_without_keys_refuse_even_on_loopback(string role)
    {
        var e = Assert.Throws<OptionsValidationException>(() => GatewayHost.Build(
            ["--role", role, "--Nats:Url=nats://127.0.0.1:1", "--Gateway:WebSocketEndpoint=127.0.0.1:0", "--Gateway:HttpEndpoint=127.0.0.1:0"]));
        Assert.Contains(e.Failures, f => f.Contains($"--role {role}", StringComparison.Ordinal) && f.Contains("Gateway:Auth:SigningKey", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.Contains("Gateway:Auth:AdminKey", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_reachable_server_starts_with_keys_from_mounted_files()
    {
        var dir = TestGateway.NewTempDirectory();
        var key = System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);
        var keyFile = Path.Combine(dir, "signing-key");
        var adminFile = Path.Combine(dir, "admin-key");
        await File.WriteAllTextAsync(keyFile, Convert.ToBase64String(key) + "\n");
        await File.WriteAllTextAsync(adminFile, "admin-from-a-file\n");

        // The WebSocket listener on 0.0.0.0: reachable from elsewhere, so only configured keys will do.
        await using var gw = await TestGateway.StartAsync(null, "--Gateway:WebSocketEndpoint=0.0.0.0:0",
            $"--Gateway:Auth:SigningKeyFile={keyFile}", $"--Gateway:Auth:AdminKeyFile={adminFile}");
        Assert.False(File.Exists(Path.Combine(gw.DataDirectory, "dev-signing.key")));
        Assert.Equal("admin-from-a-file", gw.AdminKey);
        await gw.CreateChatAsync("c1", "alice");

        var token = JwtAuthenticator.Mint(new SymmetricSecurityKey(key), "t1", "alice", TimeSpan.FromMinutes(5));
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/chats/c1/messages");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await gw.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public async Task The_token_command_refuses_where_the_server_would_not_generate_a_development_key()
    {
        var dir = TestGateway.NewTempDirectory();
        var (exitCode, stdout, stderr) = await GatewayProcess.RunToExitAsync(TimeSpan.FromSeconds(60),
            "token", "--tenant", "t1", "--user", "alice", "--data", dir, "--Gateway:WebSocketEndpoint=0.0.0.0:8080");
        Assert.Equal(1, exitCode);
        Assert.Equal("", stdout);
        Assert.Contains("Gateway:Auth:SigningKey", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(dir, "dev-signing.key")));

        // On loopback (the README's walk-through) it creates and uses the same development key as the server.
        (exitCode, stdout, _) = await GatewayProcess.RunToExitAsync(TimeSpan.FromSeconds(60), "token", "--tenant", "t1", "--user", "alice", "--data", dir);
        Assert.Equal(0, exitCode);
        Assert.StartsWith("eyJ", stdout.Trim(), StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(dir, "dev-signing.key")));
        Directory.Delete(dir, recursive: true);
    }
}
