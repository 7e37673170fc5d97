using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;

namespace Gateway.Benchmarks.Support;

/// <summary>
/// The Release build of <c>Gateway.Server</c> as a child process (embedded mode, RocksDB in a temp directory), with a
/// known signing key and admin key so the probe can mint tokens and create chats, and with the per-address handshake
/// rate and connection caps and the per-user subscribe rate lifted so one probe process can open thousands of
/// connections from 127.0.0.1.
/// </summary>
internal sealed class GatewayChild : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _directory;
    private readonly HttpClient _http;

    private GatewayChild(Process process, string directory, IPEndPoint webSocket, Uri http, string path, byte[] signingKey, string adminKey)
    {
        _process = process;
        _directory = directory;
        WebSocket = webSocket;
        Path = path;
        SigningKey = signingKey;
        _http = new HttpClient { BaseAddress = http, Timeout = TimeSpan.FromSeconds(30) };
        _http.DefaultRequestHeaders.Authorization = new("Bearer", adminKey);
    }

    public int Pid => _process.Id;

    public IPEndPoint WebSocket { get; }

    public string Path { get; }

    public byte[] SigningKey { get; }

    /// <summary>Starts the server and waits until it wrote its ports file.</summary>
    /// <param name="serverGc">DOTNET_gcServer for the child: true = Server GC, false = Workstation GC.</param>
    /// <param name="environment">Extra environment variables for the child (e.g. DOTNET_GCConserveMemory).</param>
    /// <param name="serverDll">Gateway.Server.dll to run; null = the Release build next to this benchmark. Another build
    /// (e.g. of an older commit) gives before/after numbers from the same probe on the same machine.</param>
    public static async Task<GatewayChild> StartAsync(bool serverGc, IReadOnlyDictionary<string, string> environment, string? serverDll = null)
    {
        string dll = serverDll ?? FindServerDll();
        string dir = Directory.CreateTempSubdirectory("idle-memory-").FullName;
        byte[] key = RandomNumberGenerator.GetBytes(32);
        string adminKey = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
        string ports = System.IO.Path.Combine(dir, "ports.json");
        var psi = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = dir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(dll);
        foreach (var a in new[]
        {
            "--Gateway:WebSocketEndpoint=127.0.0.1:0", "--Gateway:HttpEndpoint=127.0.0.1:0", $"--Gateway:DataDirectory={dir}",
            $"--Gateway:PortsFile={ports}", "--Gateway:HandshakesPerSecondPerIp=0", "--Gateway:MaxConnectionsPerIp=0",
            "--Gateway:SubscribesPerSecond=1000000", "--Gateway:SubscribeBurst=1000000",
            $"--Gateway:Auth:SigningKey={Convert.ToBase64String(key)}", $"--Gateway:Auth:AdminKey={adminKey}",
            "--Logging:LogLevel:Default=Warning",
        })
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["DOTNET_gcServer"] = serverGc ? "1" : "0";
        foreach (var (name, value) in environment)
        {
            psi.Environment[name] = value;
        }

        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start the gateway");
        process.OutputDataReceived += (_, e) => Echo(e.Data);
        process.ErrorDataReceived += (_, e) => Echo(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var deadline = Stopwatch.StartNew();
        while (!File.Exists(ports))
        {
            if (process.HasExited || deadline.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new InvalidOperationException($"the gateway did not start (exited: {process.HasExited})");
            }

            await Task.Delay(50).ConfigureAwait(false);
        }

        var endpoints = JsonSerializer.Deserialize<Dictionary<string, string>>(await File.ReadAllTextAsync(ports).ConfigureAwait(false))!;
        var ws = new Uri(endpoints["ws"]);
        return new GatewayChild(process, dir, new IPEndPoint(IPAddress.Parse(ws.Host), ws.Port), new Uri(endpoints["http"]),
            ws.AbsolutePath, key, adminKey);
    }

    /// <summary>Creates a chat with the given members through the admin API.</summary>
    public async Task CreateChatAsync(string tenant, string chatId, IReadOnlyList<string> members)
    {
        using var response = await _http.PostAsJsonAsync($"/v1/admin/tenants/{tenant}/chats", new { chatId, members }).ConfigureAwait(false);
        response.EnsureSuccessStatusCode();
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync().ConfigureAwait(false);
        _process.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // RocksDB's files may linger a moment after the kill; a temp directory left behind is harmless.
        }
    }

    private static void Echo(string? line)
    {
        if (!string.IsNullOrEmpty(line))
        {
            Console.Error.WriteLine("  [gateway] " + line);
        }
    }

    /// <summary>The Release build of Gateway.Server next to this benchmark's own build (built with it).</summary>
    private static string FindServerDll()
    {
        // bench/Gateway.Benchmarks/bin/Release/net10.0/ → src/Gateway.Server/bin/Release/net10.0/Gateway.Server.dll
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        string tfm = dir.Name;
        string configuration = dir.Parent!.Name;
        for (var d = dir; d is not null; d = d.Parent)
        {
            string candidate = System.IO.Path.Combine(d.FullName, "src", "Gateway.Server", "bin", configuration, tfm, "Gateway.Server.dll");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException("Gateway.Server.dll not found: build the benchmarks in Release first.");
    }
}
