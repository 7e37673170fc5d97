using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using Gateway.LoadGen.Targets;
using Gateway.Tools.Common;

namespace Gateway.LoadGen;

/// <summary>
/// Starts our gateway from its build output as a child process with load-test settings (no per-IP admission
/// limits, per-user limits out of the way), optionally pinned to a CPU with <c>taskset</c>, and a fresh data
/// directory, signing key and admin key.
/// </summary>
internal sealed class ServerLauncher : IAsyncDisposable
{
    /// <summary>Limits a load test must lift (<see cref="GatewayServerArgs.LoadLimits"/>); LoadGen's servers (the
    /// launched one and the chaos topology's) also get the history rates lifted.</summary>
    public static readonly string[] LoadArgs =
    [
        .. GatewayServerArgs.LoadLimits,
        "--Gateway:HistoryPerSecond=100000",
        "--Gateway:HistoryBurst=100000",
    ];

    private readonly Process _process;
    private readonly string _dataDirectory;

    private ServerLauncher(Process process, string dataDirectory, TargetSettings settings)
    {
        _process = process;
        _dataDirectory = dataDirectory;
        Settings = settings;
    }

    public TargetSettings Settings { get; }

    public int Pid => _process.Id;

    public static async Task<ServerLauncher> StartAsync(string server, int? cpu, IReadOnlyList<string> extraArgs, string? gc)
    {
        var dll = server == "auto" ? FindServerDll() : Path.GetFullPath(server);
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException("Gateway.Server.dll not found: build src/Gateway.Server first", dll);
        }

        var data = Path.Combine(Path.GetTempPath(), "loadgen-gw-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(data);
        var portsFile = Path.Combine(data, "ports.json");
        var signingKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var adminKey = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
        var psi = new ProcessStartInfo(cpu is null ? "dotnet" : "taskset")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (cpu is { } c)
        {
            // taskset execs the command, so the pid we hold is the server's own (for /proc/<pid>/status).
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add(c.ToString(System.Globalization.CultureInfo.InvariantCulture));
            psi.ArgumentList.Add("dotnet");
        }

        psi.ArgumentList.Add(dll);
        foreach (var arg in (string[])[
            "--Gateway:WebSocketEndpoint=127.0.0.1:0",
            "--Gateway:HttpEndpoint=127.0.0.1:0",
            $"--Gateway:DataDirectory={data}",
            $"--Gateway:PortsFile={portsFile}",
            $"--Gateway:Auth:SigningKey={signingKey}",
            $"--Gateway:Auth:AdminKey={adminKey}",
            .. LoadArgs,
            .. extraArgs])
        {
            psi.ArgumentList.Add(arg);
        }

        if (gc is not null)
        {
            psi.Environment["DOTNET_gcServer"] = gc == "server" ? "1" : "0";
        }

        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start the gateway");
        process.OutputDataReceived += static (_, _) => { };
        process.ErrorDataReceived += static (_, e) =>
        {
            if (e.Data is { Length: > 0 } line)
            {
                Console.Error.WriteLine("[server] " + line);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var deadline = Stopwatch.StartNew();
        while (!File.Exists(portsFile))
        {
            if (process.HasExited || deadline.Elapsed > TimeSpan.FromSeconds(60))
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }

                throw new InvalidOperationException("the gateway did not start (see [server] lines)");
            }

            await Task.Delay(50).ConfigureAwait(false);
        }

        var ports = JsonSerializer.Deserialize<Dictionary<string, string>>(await File.ReadAllTextAsync(portsFile).ConfigureAwait(false))!;
        var settings = new TargetSettings
        {
            Name = "gateway",
            Endpoint = new Uri(ports["ws"]),
            HttpEndpoint = new Uri(ports["http"]),
            AdminKey = adminKey,
            SigningKey = signingKey,
        };
        return new ServerLauncher(process, data, settings);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }

        _process.Dispose();
        try
        {
            Directory.Delete(_dataDirectory, recursive: true);
        }
        catch (IOException)
        {
            // best effort: RocksDB may still be releasing files
        }
    }

    /// <summary>src/Gateway.Server/bin/&lt;same configuration as this tool&gt;/net10.0/Gateway.Server.dll, found from the repository root.</summary>
    internal static string FindServerDll()
    {
        var bin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var tfm = bin.Name;
        var configuration = bin.Parent?.Name ?? "Release";
        var dir = bin;
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Gateway.sln")))
        {
            dir = dir.Parent;
        }

        var root = dir?.FullName ?? throw new InvalidOperationException("repository root not found; pass --server PATH");
        var preferred = Path.Combine(root, "src", "Gateway.Server", "bin", configuration, tfm, "Gateway.Server.dll");
        return File.Exists(preferred) ? preferred : Path.Combine(root, "src", "Gateway.Server", "bin", "Release", tfm, "Gateway.Server.dll");
    }
}
