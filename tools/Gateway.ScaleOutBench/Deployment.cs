using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Gateway.Tools.Common;

namespace Gateway.ScaleOutBench;

/// <summary>
/// One setup under test, running as child processes in a fresh temp directory: either one embedded server
/// (<c>--role all</c>), or nats-server + one writer + two gateways. <see cref="GatewayA"/> and
/// <see cref="GatewayB"/> are the same server in the embedded setup.
/// </summary>
internal sealed class Deployment : IAsyncDisposable
{
    /// <summary>The tenant every bench user and chat lives in.</summary>
    public const string Tenant = "bench";

    private readonly List<ChildProcess> _children = [];
    private readonly string _root;
    private readonly byte[] _signingKey = RandomNumberGenerator.GetBytes(32);
    private readonly string _adminKey = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };

    private Deployment(string name)
    {
        Name = name;
        _root = Path.Combine(Path.GetTempPath(), $"scaleout-{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(_root);
    }

    /// <summary><c>embedded</c> or <c>distributed</c>.</summary>
    public string Name { get; }

    /// <summary>Where the sender connects.</summary>
    public Uri GatewayA { get; private set; } = null!;

    /// <summary>Where the receiver connects (another process in the distributed setup).</summary>
    public Uri GatewayB { get; private set; } = null!;

    /// <summary>The HTTP API used for chat administration.</summary>
    public Uri AdminHttp { get; private set; } = null!;

    /// <summary>The NATS URL (distributed setup only).</summary>
    public string? NatsUrl { get; private set; }

    /// <summary>The server processes and their pids (for the report).</summary>
    public IReadOnlyList<ChildProcess> Children => _children;

    /// <summary>Starts one <c>--role all</c> server.</summary>
    public static async Task<Deployment> StartEmbeddedAsync(BenchOptions options, CancellationToken ct)
    {
        var d = new Deployment("embedded");
        try
        {
            var (ws, http) = await d.StartServerAsync(options, "server", "all", [], ct).ConfigureAwait(false);
            d.GatewayA = d.GatewayB = ws!;
            d.AdminHttp = http;
            return d;
        }
        catch
        {
            await d.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Starts nats-server (JetStream, file store), one writer, then two gateways.</summary>
    public static async Task<Deployment> StartDistributedAsync(BenchOptions options, CancellationToken ct)
    {
        var d = new Deployment("distributed");
        try
        {
            d.NatsUrl = await d.StartNatsAsync(options, ct).ConfigureAwait(false);
            string[] nats = [$"--Nats:Url={d.NatsUrl}"];

            // The writer creates or verifies the streams at start-up; gateways start after it so their first command
            // finds a writer listening.
            await d.StartServerAsync(options, "writer", "writer", [.. nats, "--Nats:NodeId=w1"], ct).ConfigureAwait(false);
            var a = d.StartServerAsync(options, "gateway-a", "gateway", [.. nats, "--Nats:NodeId=gw-a"], ct);
            var b = d.StartServerAsync(options, "gateway-b", "gateway", [.. nats, "--Nats:NodeId=gw-b"], ct);
            var (wsA, httpA) = await a.ConfigureAwait(false);
            var (wsB, _) = await b.ConfigureAwait(false);
            d.GatewayA = wsA!;
            d.GatewayB = wsB!;

            // Chats are created through a gateway, as a client-facing admin call would be (it forwards to the writer).
            d.AdminHttp = httpA;
            return d;
        }
        catch
        {
            await d.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>A token for <paramref name="userId"/>, valid on every server of this deployment.</summary>
    public string TokenFor(string userId) => Tokens.Mint(_signingKey, Tenant, userId, TimeSpan.FromHours(1));

    /// <summary>Creates a chat with these members through the admin API.</summary>
    public async Task CreateChatAsync(string chatId, IReadOnlyList<string> members, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(AdminHttp, $"/v1/admin/tenants/{Tenant}/chats"))
        {
            Content = JsonContent.Create(new { chatId, members }),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _adminKey);
        using var response = await _http.SendAsync(request, ct).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            var body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            throw new HttpRequestException($"creating chat {chatId} on {Name}: HTTP {(int)response.StatusCode} {body}");
        }
    }

    /// <summary>Throws when a server process died during a measurement (its numbers would be void).</summary>
    public void EnsureAlive()
    {
        foreach (var child in _children)
        {
            if (child.HasExited)
            {
                throw new InvalidOperationException($"{Name}: {child.Name} exited during the run. Its last output:{Environment.NewLine}{child.Tail()}");
            }
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        // Gateways first, then the writer, then NATS: the reverse of the start order.
        for (var i = _children.Count - 1; i >= 0; i--)
        {
            await _children[i].DisposeAsync().ConfigureAwait(false);
        }

        _children.Clear();
        _http.Dispose();
        for (var attempt = 0; attempt < 5 && Directory.Exists(_root); attempt++)
        {
            try
            {
                Directory.Delete(_root, recursive: true);
            }
            catch (IOException)
            {
                // A killed process's files can linger for a moment.
                await Task.Delay(200).ConfigureAwait(false);
            }
        }
    }

    private async Task<string> StartNatsAsync(BenchOptions options, CancellationToken ct)
    {
        var dir = Path.Combine(_root, "nats");
        var portsDir = Path.Combine(dir, "ports");
        Directory.CreateDirectory(portsDir);
        var nats = ChildProcess.Start("nats-server", options.NatsServer,
            ["-a", "127.0.0.1", "-p", "-1", "-js", "-sd", Path.Combine(dir, "js"), "--ports_file_dir", portsDir], options.ServerCpus);
        _children.Add(nats);
        var file = Path.Combine(portsDir, $"nats-server_{nats.Pid}.ports");
        await nats.WaitForFileAsync(file, TimeSpan.FromSeconds(20), ct).ConfigureAwait(false);

        // The file can be seen before it is completely written: retry the parse for up to 50 × 20 ms = 1 s.
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(file).ConfigureAwait(false));
                return doc.RootElement.GetProperty("nats")[0].GetString()!;
            }
            catch (JsonException) when (attempt < 50)
            {
                await Task.Delay(20).ConfigureAwait(false);
            }
        }
    }

    private async Task<(Uri? Ws, Uri Http)> StartServerAsync(BenchOptions options, string name, string role, string[] extra, CancellationToken ct)
    {
        var data = Path.Combine(_root, name);
        Directory.CreateDirectory(data);
        var portsFile = Path.Combine(data, "ports.json");
        var child = ChildProcess.Start(name, options.Dotnet,
        [
            options.ServerDll,
            "--role", role,
            "--Gateway:WebSocketEndpoint=127.0.0.1:0",
            "--Gateway:HttpEndpoint=127.0.0.1:0",
            $"--Gateway:DataDirectory={data}",
            $"--Gateway:PortsFile={portsFile}",
            $"--Gateway:Auth:SigningKey={Convert.ToBase64String(_signingKey)}",
            $"--Gateway:Auth:AdminKey={_adminKey}",
            .. GatewayServerArgs.LoadLimits,
            .. extra,
        ], options.ServerCpus);
        _children.Add(child);

        // 60 s: a cold .NET start on 2 busy cores, plus NATS stream creation for the writer.
        await child.WaitForFileAsync(portsFile, TimeSpan.FromSeconds(60), ct).ConfigureAwait(false);
        var ports = JsonSerializer.Deserialize<Dictionary<string, string>>(await File.ReadAllTextAsync(portsFile).ConfigureAwait(false))!;
        return (ports["ws"] is { Length: > 0 } ws ? new Uri(ws) : null, new Uri(ports["http"]));
    }
}
