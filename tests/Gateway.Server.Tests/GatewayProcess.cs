using System.Diagnostics;
using System.Text.Json;

namespace Gateway.Server.Tests;

/// <summary>The gateway as a real child process (<c>dotnet Gateway.Server.dll</c>), so a test can kill -9 it.</summary>
public sealed class GatewayProcess : IAsyncDisposable
{
    private readonly Process _process;

    private GatewayProcess(Process process, Uri ws, Uri http)
    {
        _process = process;
        WebSocketUri = ws;
        HttpUri = http;
    }

    public Uri WebSocketUri { get; }

    public Uri HttpUri { get; }

    public static async Task<GatewayProcess> StartAsync(string dataDirectory, params string[] extraArgs)
    {
        var portsFile = Path.Combine(dataDirectory, $"ports-{Guid.NewGuid():N}.json");
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(ServerDll());
        psi.ArgumentList.Add("--Gateway:WebSocketEndpoint=127.0.0.1:0");
        psi.ArgumentList.Add("--Gateway:HttpEndpoint=127.0.0.1:0");
        psi.ArgumentList.Add($"--Gateway:DataDirectory={dataDirectory}");
        psi.ArgumentList.Add($"--Gateway:PortsFile={portsFile}");
        psi.ArgumentList.Add("--Logging:LogLevel:Default=Warning");
        foreach (var arg in extraArgs)
        {
            psi.ArgumentList.Add(arg);
        }

        var process = Process.Start(psi)!;
        process.OutputDataReceived += static (_, _) => { };
        process.ErrorDataReceived += static (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!File.Exists(portsFile))
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"gateway exited with {process.ExitCode}");
            }

            if (DateTime.UtcNow > deadline)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException("gateway did not start within 60 s");
            }

            await Task.Delay(50);
        }

        var ports = JsonSerializer.Deserialize<Dictionary<string, string>>(await File.ReadAllTextAsync(portsFile))!;
        return new GatewayProcess(process, new Uri(ports["ws"]), new Uri(ports["http"]));
    }

    /// <summary>Runs the server with <paramref name="args"/> until it exits on its own (a start-up failure).</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunToExitAsync(TimeSpan timeout, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(ServerDll());
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>SIGTERM, what an orchestrator sends: the gateway drains and exits on its own.</summary>
    public async Task TerminateAsync()
    {
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>Waits for the process to exit on its own and returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        await _process.WaitForExitAsync().WaitAsync(timeout);
        return _process.ExitCode;
    }

    /// <summary>SIGKILL: no shutdown hooks, no flush. Only what was synced to the WAL survives.</summary>
    public async Task KillAsync()
    {
        _process.Kill();
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            await KillAsync();
        }

        _process.Dispose();
    }

    /// <summary>The server built next to this test (same configuration: Debug or Release).</summary>
    internal static string ServerDll()
    {
        var testBin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var tfm = testBin.Name;
        var configuration = testBin.Parent!.Name;
        var dir = testBin;
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Gateway.sln")))
        {
            dir = dir.Parent;
        }

        var dll = Path.Combine(dir?.FullName ?? throw new InvalidOperationException("repository root not found"),
            "src", "Gateway.Server", "bin", configuration, tfm, "Gateway.Server.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException("build the server first", dll);
    }
}
