using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace PeerClients.Tests;

/// <summary>A peer started through its <c>start.sh</c>, ready once it printed READY; killed (with its children) on dispose.</summary>
public sealed class PeerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private PeerProcess(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    /// <summary>What the peer wrote so far, stdout and stderr, for failure messages.</summary>
    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    /// <summary>Runs <c>bench/peers/<paramref name="peer"/>/start.sh</c> on a free port and waits for READY.</summary>
    public static async Task<PeerProcess> StartAsync(string peer, IReadOnlyDictionary<string, string> environment, TimeSpan readyTimeout)
    {
        var script = Path.Combine(PeersDirectory, peer, "start.sh");
        var port = FreePort();
        var info = new ProcessStartInfo("bash", [script, port.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // Only what the fixture passes turns authentication on, whatever the test runner's environment holds.
        info.Environment.Remove("PEER_JWT_KEY");
        info.Environment.Remove("PEER_NATS_TOKEN");
        foreach (var (name, value) in environment)
        {
            info.Environment[name] = value;
        }
        var process = new Process { StartInfo = info };
        var peerProcess = new PeerProcess(process, port);
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }
            peerProcess.Append(e.Data);
            if (e.Data == "READY")
            {
                ready.TrySetResult();
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                peerProcess.Append(e.Data);
            }
        };
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) => ready.TrySetException(new InvalidOperationException($"{peer} exited before READY."));
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await ready.Task.WaitAsync(readyTimeout);
        }
        catch (Exception ex)
        {
            await peerProcess.DisposeAsync();
            throw new InvalidOperationException($"{peer} did not print READY within {readyTimeout}:\n{peerProcess.Log}", ex);
        }
        return peerProcess;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (InvalidOperationException)
        {
            // Never started or already gone.
        }
        _process.Dispose();
    }

    private void Append(string line)
    {
        lock (_log)
        {
            _log.AppendLine(line);
        }
    }

    /// <summary>The folder holding the peers (found from the test binaries upwards), i.e. <c>bench/peers</c>.</summary>
    public static string PeersDirectory { get; } = FindPeersDirectory();

    private static string FindPeersDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "node-ws", "start.sh")))
            {
                return dir.FullName;
            }
        }
        throw new DirectoryNotFoundException("bench/peers not found above " + AppContext.BaseDirectory);
    }

    // The port is released before the peer binds it; another process could take it in between, which would fail the
    // start loudly (no READY), not silently.
    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
