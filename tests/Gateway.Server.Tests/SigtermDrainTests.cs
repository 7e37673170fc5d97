using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using System.Text.Json;
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
        Process? process = null;
        try
        {
            var portsFile = Path.Combine(dir, "ports.json");
            process = StartServer(dir, portsFile, "--Gateway:DrainGraceSeconds=1", "--Gateway:DrainJitterSeconds=0.5");
            var (ws, http) = await WaitForPortsAsync(process, portsFile);
            var key = new SymmetricSecurityKey(Convert.FromBase64String((await File.ReadAllTextAsync(Path.Combine(dir, "dev-signing.key"))).Trim()));
            await using var client = await ConnectionTestClient.ConnectAsync(ws, JwtAuthenticator.Mint(key, "t1", "alice", TimeSpan.FromHours(1)));
            using var httpClient = new HttpClient { BaseAddress = http, Timeout = TimeSpan.FromSeconds(10) };

            using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }

            var drain = await client.ReceiveAsync<DrainFrame>();
            Assert.InRange(drain.ReconnectAfterMs, 0u, 500u);
            using (var readiness = await httpClient.GetAsync("/readyz"))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, readiness.StatusCode);
            }

            Assert.Null(await client.ReceiveAsync(TimeSpan.FromSeconds(10)));
            Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, client.CloseStatus);
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(0, process.ExitCode);
        }
        finally
        {
            if (process is { HasExited: false })
            {
                process.Kill();
            }

            process?.Dispose();
            Directory.Delete(dir, recursive: true);
        }
    }

    private static Process StartServer(string dataDirectory, string portsFile, params string[] extra)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(ServerDll());
        psi.ArgumentList.Add("--Gateway:WebSocketEndpoint=127.0.0.1:0");
        psi.ArgumentList.Add("--Gateway:HttpEndpoint=127.0.0.1:0");
        psi.ArgumentList.Add($"--Gateway:DataDirectory={dataDirectory}");
        psi.ArgumentList.Add($"--Gateway:PortsFile={portsFile}");
        psi.ArgumentList.Add("--Logging:LogLevel:Default=Warning");
        foreach (var arg in extra)
        {
            psi.ArgumentList.Add(arg);
        }

        var process = Process.Start(psi)!;
        process.OutputDataReceived += static (_, _) => { };
        process.ErrorDataReceived += static (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static async Task<(Uri Ws, Uri Http)> WaitForPortsAsync(Process process, string portsFile)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!File.Exists(portsFile))
        {
            Assert.False(process.HasExited, "the gateway exited during startup");
            Assert.True(DateTime.UtcNow < deadline, "the gateway did not start within 60 s");
            await Task.Delay(50);
        }

        var ports = JsonSerializer.Deserialize<Dictionary<string, string>>(await File.ReadAllTextAsync(portsFile))!;
        return (new Uri(ports["ws"]), new Uri(ports["http"]));
    }

    /// <summary>The server built next to this test (same configuration and framework).</summary>
    private static string ServerDll()
    {
        var testBin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var dir = testBin;
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Gateway.sln")))
        {
            dir = dir.Parent;
        }

        var dll = Path.Combine(dir?.FullName ?? throw new InvalidOperationException("repository root not found"),
            "src", "Gateway.Server", "bin", testBin.Parent!.Name, testBin.Name, "Gateway.Server.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException("build the server first", dll);
    }
}
