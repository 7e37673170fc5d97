using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace Gateway.Nats.Tests;

/// <summary>
/// A real <c>nats-server</c> process with JetStream (Debian's 2.9.10), on loopback, its store in a temp directory.
/// The client port is chosen by the server (<c>-p -1</c>) and read from its ports file; a restart after <see cref="Kill"/>
/// reuses the same port and store directory, as an operator's restart would.
/// </summary>
public sealed class NatsServer : IAsyncDisposable
{
    private readonly string _storeDir;
    private readonly string[] _clusterArgs;
    private Process? _process;

    private NatsServer(string storeDir, string[] clusterArgs)
    {
        _storeDir = storeDir;
        _clusterArgs = clusterArgs;
    }

    /// <summary>The client URL, e.g. <c>nats://127.0.0.1:41234</c>.</summary>
    public string Url { get; private set; } = "";

    /// <summary>The client port.</summary>
    public int Port { get; private set; } = -1;

    /// <summary>The path of the binary: /usr/sbin/nats-server (Debian) unless on PATH elsewhere.</summary>
    public static string Binary => File.Exists("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server";

    /// <summary>Starts a single server with JetStream.</summary>
    public static async Task<NatsServer> StartAsync()
    {
        var server = new NatsServer(TempDirectory("nats"), []);
        await server.StartProcessAsync();
        return server;
    }

    /// <summary>Starts a 3-node JetStream cluster on loopback (routes on ports picked here) and waits until it has a
    /// JetStream meta leader.</summary>
    public static async Task<NatsServer[]> StartClusterAsync(int nodes = 3)
    {
        var clusterPorts = Enumerable.Range(0, nodes).Select(_ => FreePort()).ToArray();
        var routes = string.Join(',', clusterPorts.Select(p => $"nats://127.0.0.1:{p}"));
        var servers = new NatsServer[nodes];
        for (var i = 0; i < nodes; i++)
        {
            servers[i] = new NatsServer(TempDirectory($"nats-n{i}"),
                ["-n", $"n{i}", "--cluster_name", "chatgw", "--cluster", $"nats://127.0.0.1:{clusterPorts[i]}", "--routes", routes]);
        }

        await Task.WhenAll(servers.Select(s => s.StartProcessAsync()));
        return servers;
    }

    /// <summary>kill -9: no shutdown, no flush.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false } p)
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit(10_000);
        }

        _process?.Dispose();
        _process = null;
    }

    /// <summary>Starts the server again on the same port and store directory.</summary>
    public Task RestartAsync() => StartProcessAsync();

    public ValueTask DisposeAsync()
    {
        Kill();
        try
        {
            Directory.Delete(_storeDir, recursive: true);
        }
        catch (IOException)
        {
        }

        return ValueTask.CompletedTask;
    }

    private async Task StartProcessAsync()
    {
        var portsDir = Path.Combine(_storeDir, "ports");
        Directory.CreateDirectory(portsDir);
        foreach (var f in Directory.GetFiles(portsDir))
        {
            File.Delete(f);
        }

        var psi = new ProcessStartInfo(Binary)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var a in (string[])["-a", "127.0.0.1", "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-js", "-sd", Path.Combine(_storeDir, "js"), "--ports_file_dir", portsDir, .. _clusterArgs])
        {
            psi.ArgumentList.Add(a);
        }

        _process = Process.Start(psi) ?? throw new InvalidOperationException("nats-server did not start");
        var log = new System.Text.StringBuilder();
        _process.ErrorDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        _process.OutputDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        _process.BeginErrorReadLine();
        _process.BeginOutputReadLine();

        var deadline = DateTime.UtcNow.AddSeconds(20);
        var file = Path.Combine(portsDir, $"nats-server_{_process.Id}.ports");
        while (!File.Exists(file))
        {
            if (_process.HasExited || DateTime.UtcNow > deadline)
            {
                string text;
                lock (log)
                {
                    text = log.ToString();
                }

                throw new InvalidOperationException($"nats-server did not write its ports file: {text}");
            }

            await Task.Delay(20);
        }

        // The file can be seen before it is fully written: retry the parse briefly.
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(file));
                Url = doc.RootElement.GetProperty("nats")[0].GetString()!;
                Port = new Uri(Url).Port;
                return;
            }
            catch (JsonException) when (attempt < 50)
            {
                await Task.Delay(20);
            }
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    internal static string TempDirectory(string prefix)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"gw-{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }
}
