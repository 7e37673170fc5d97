using System.Net;
using System.Net.WebSockets;
using Gateway.Protocol;
using Gateway.Server.Auth;
using Microsoft.IdentityModel.Tokens;

namespace Gateway.Server.Tests;

/// <summary>The production path: SIGTERM to the real process drains it and it exits cleanly (POSIX: uses <c>kill</c>).</summary>
public sealed class SigtermDrainTests
{
    [Fact]
    public async Task Sigterm_drains_the_process_and_it_exits_zero()
    {
        var dir = TestGateway.NewTempDirectory();
        try
        {
            await using var gateway = await GatewayProcess.StartAsync(dir, "--Gateway:DrainGraceSeconds=1", "--Gateway:DrainJitterSeconds=0.5");
            var key = new SymmetricSecurityKey(Convert.FromBase64String((await File.ReadAllTextAsync(Path.Combine(dir, "dev-signing.key"))).Trim()));
            await using var client = await WsClient.ConnectAsync(gateway.WebSocketUri, JwtAuthenticator.Mint(key, "t1", "alice", TimeSpan.FromHours(1)));
            using var httpClient = new HttpClient { BaseAddress = gateway.HttpUri, Timeout = TimeSpan.FromSeconds(10) };

            await gateway.TerminateAsync();

            var drain = await client.ReceiveAsync<DrainFrame>();
            Assert.InRange(drain.ReconnectAfterMs, 0u, 500u);
            using (var readiness = await httpClient.GetAsync("/readyz"))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, readiness.StatusCode);
            }

            Assert.Null(await client.ReceiveAsync(TimeSpan.FromSeconds(10)));
            Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, client.CloseStatus);
            Assert.Equal(0, await gateway.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
