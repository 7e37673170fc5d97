using System.Net;
using System.Net.Sockets;

namespace Gateway.Server.Tests;

/// <summary>Start-up failures that a setting fixes end with one line that names it, and exit code 1.</summary>
public sealed class StartupTests
{
    [Theory]
    [InlineData("Gateway:HttpEndpoint")]
    [InlineData("Gateway:WebSocketEndpoint")]
    public async Task A_busy_port_is_one_line_naming_the_endpoint_and_the_setting_and_exit_code_1(string setting)
    {
        using var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        var busy = $"127.0.0.1:{((IPEndPoint)holder.LocalEndpoint).Port}";
        var dir = TestGateway.NewTempDirectory();
        try
        {
            var (exitCode, stdout, stderr) = await GatewayProcess.RunToExitAsync(TimeSpan.FromSeconds(60),
                "--Gateway:WebSocketEndpoint=127.0.0.1:0", "--Gateway:HttpEndpoint=127.0.0.1:0", $"--Gateway:DataDirectory={dir}",
                $"--{setting}={busy}");
            Assert.Equal(1, exitCode);
            var lines = (stdout + stderr).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var line = Assert.Single(lines);
            Assert.Contains(busy, line, StringComparison.Ordinal);
            Assert.Contains(setting, line, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
