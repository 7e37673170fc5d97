using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace Gateway.LoadGen.Chaos;

/// <summary>
/// The deployment a chaos run attacks, as child processes on loopback with ports fixed at start so restarts reuse
/// them: <c>distributed</c> (one nats-server with JetStream, two writers, two gateways), <c>cluster</c> (three
/// nats-server nodes, <c>--Nats:Replicas=3</c>, two writers, two gateways, every role given all three URLs) or
/// <c>embedded</c> (one <c>--role all</c> server). One HS256 signing key and one admin key, random per run.
/// </summary>
internal sealed class ChaosTopology : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);
    private readonly List<ChaosProcess> _components = [];

    // What the faults never touch: the CQL test peer holds the shared store in memory (a database that is killed loses
    // its data, which no design survives); its kill would test the test double, not the system.
    private readonly List<ChaosProcess> _infrastructure = [];
    private readonly string _root;

    private ChaosTopology(string kind, string root)
    {
        Kind = kind;
        _root = root;
    }

    public string Kind { get; }

    /// <summary>Every killable component, in start order.</summary>
    public IReadOnlyList<ChaosProcess> Components => _components;

    /// <summary>WebSocket endpoints clients pick from at random.</summary>
    public List<Uri> GatewayEndpoints { get; } = [];

    /// <summary>HTTP APIs (name, base URL): gateways and writers (admin calls, history reads).</summary>
    public List<(string Name, Uri Http)> HttpApis { get; } = [];

    /// <summary>Comma-separated NATS URLs, or null (embedded).</summary>
    public string? NatsUrls { get; private set; }

    public byte[] SigningKey { get; } = RandomNumberGenerator.GetBytes(32);

    public string AdminKey { get; } = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));

    /// <summary>Builds the topology's processes and starts them in dependency order (NATS, writers, gateways).</summary>
    /// <remarks>With <c>cqlPeerDll</c> (the CQL test peer's program) the writers share one Scylla keyspace
    /// (<c>--Store:Kind=scylla</c>) on a three-node test double of Scylla started first, with the schema applied;
    /// without it each writer keeps RocksDB.</remarks>
    public static async Task<ChaosTopology> StartAsync(string kind, string serverDll, string natsServer, string outDir,
        IReadOnlyList<string> extraServerArgs, Stopwatch clock, CancellationToken ct, string? cqlPeerDll = null, string? label = null)
    {
        if (kind is not ("distributed" or "cluster" or "embedded"))
        {
            throw new ArgumentException($"--topology must be distributed, cluster or embedded, not '{kind}'");
        }

        var root = Path.Combine(Path.GetTempPath(), "chaos-" + kind + "-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(root);
        // One folder per run name (topology and label), so that two runs of one topology into one OUT keep their logs.
        var logs = Path.Combine(outDir, "logs-" + kind + (label is null ? "" : "-" + label));
        Directory.CreateDirectory(logs);
        var t = new ChaosTopology(kind, root);
        try
        {
            if (kind == "embedded")
            {
                var (ws, http) = (FreePort(), FreePort());
                t._components.Add(t.Server("server", "server", "all", serverDll, ws, http, [], extraServerArgs, logs, clock));
                t.GatewayEndpoints.Add(new Uri($"ws://127.0.0.1:{ws}/v1/ws"));
                t.HttpApis.Add(("server", new Uri($"http://127.0.0.1:{http}")));
                await t._components[0].StartAsync(StartTimeout, ct).ConfigureAwait(false);
                return t;
            }

            var nodes = kind == "cluster" ? 3 : 1;
            var clientPorts = Enumerable.Range(0, nodes).Select(_ => FreePort()).ToArray();
            var routePorts = Enumerable.Range(0, nodes).Select(_ => FreePort()).ToArray();
            var routes = string.Join(',', routePorts.Select(p => $"nats://127.0.0.1:{p}"));
            var natsProcs = new List<ChaosProcess>();
            for (var i = 0; i < nodes; i++)
            {
                string[] cluster = kind == "cluster"
                    ? ["-n", $"n{i + 1}", "--cluster_name", "chaos", "--cluster", $"nats://127.0.0.1:{routePorts[i]}", "--routes", routes]
                    : [];
                var dir = Path.Combine(root, $"nats-{i + 1}");
                var portsDir = Path.Combine(dir, "ports");
                Directory.CreateDirectory(portsDir);
                var n = new ChaosProcess($"nats-{i + 1}", "nats", natsServer,
                    ["-a", "127.0.0.1", "-p", clientPorts[i].ToString(CultureInfo.InvariantCulture), "-js", "-sd", Path.Combine(dir, "js"), "--ports_file_dir", portsDir, .. cluster],
                    p => File.Exists(Path.Combine(portsDir, $"nats-server_{p.Id}.ports")) ? "ready" : null,
                    (_, _) =>
                    {
                        foreach (var f in Directory.GetFiles(portsDir))
                        {
                            File.Delete(f);
                        }

                        return Task.CompletedTask;
                    },
                    Path.Combine(logs, $"nats-{i + 1}.log"), clock);
                natsProcs.Add(n);
                t._components.Add(n);
            }

            t.NatsUrls = string.Join(',', clientPorts.Select(p => $"nats://127.0.0.1:{p}"));
            await Task.WhenAll(natsProcs.Select(n => n.StartAsync(StartTimeout, ct))).ConfigureAwait(false);

            List<string> nats = [$"--Nats:Url={t.NatsUrls}"];
            if (kind == "cluster")
            {
                nats.Add("--Nats:Replicas=3");
            }

            List<string> store = [];
            if (cqlPeerDll is not null)
            {
                store = await t.StartSharedStoreAsync(cqlPeerDll, serverDll, logs, clock, ct).ConfigureAwait(false);
            }

            // Writers first: they create the streams; a writer that starts before the cluster has a JetStream leader
            // exits and is started again by StartAsync.
            for (var i = 1; i <= 2; i++)
            {
                var http = FreePort();
                var w = t.Server($"writer-{i}", "writer", "writer", serverDll, 0, http, [.. nats, .. store, $"--Nats:NodeId=w{i}"], extraServerArgs, logs, clock);
                t._components.Add(w);
                t.HttpApis.Add(($"writer-{i}", new Uri($"http://127.0.0.1:{http}")));
                await w.StartAsync(StartTimeout, ct).ConfigureAwait(false);
            }

            var gateways = new List<ChaosProcess>();
            for (var i = 1; i <= 2; i++)
            {
                var (ws, http) = (FreePort(), FreePort());
                var g = t.Server($"gateway-{i}", "gateway", "gateway", serverDll, ws, http, [.. nats, $"--Nats:NodeId=gw{i}"], extraServerArgs, logs, clock);
                t._components.Add(g);
                gateways.Add(g);
                t.GatewayEndpoints.Add(new Uri($"ws://127.0.0.1:{ws}/v1/ws"));
                t.HttpApis.Insert(i - 1, ($"gateway-{i}", new Uri($"http://127.0.0.1:{http}")));
            }

            await Task.WhenAll(gateways.Select(g => g.StartAsync(StartTimeout, ct))).ConfigureAwait(false);
            return t;
        }
        catch
        {
            await t.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Starts the CQL test peer and applies the schema with the server's own <c>schema apply</c>; returns the
    /// writers' store arguments.</summary>
    private async Task<List<string>> StartSharedStoreAsync(string peerDll, string serverDll, string logs, Stopwatch clock, CancellationToken ct)
    {
        var port = FreePort();
        var ready = Path.Combine(_root, "cql-peer.ready");
        var peer = new ChaosProcess("cql-peer", "store", "dotnet",
            [peerDll, "--port", port.ToString(CultureInfo.InvariantCulture), "--nodes", "3", "--ready-file", ready],
            _ => File.Exists(ready) ? ready : null,
            (_, _) =>
            {
                File.Delete(ready);
                return Task.CompletedTask;
            },
            Path.Combine(logs, "cql-peer.log"), clock);
        _infrastructure.Add(peer);
        await peer.StartAsync(StartTimeout, ct).ConfigureAwait(false);
        var contactPoints = await File.ReadAllTextAsync(ready, ct).ConfigureAwait(false);
        List<string> store = ["--Store:Kind=scylla", $"--Store:ContactPoints={contactPoints}", "--Store:Keyspace=chaos"];

        using var schema = Process.Start(new ProcessStartInfo("dotnet")
        {
            ArgumentList = { serverDll, "schema", "apply", $"--Store:ContactPoints={contactPoints}", "--Store:Keyspace=chaos", "--Store:Replication={'class': 'SimpleStrategy', 'replication_factor': 3}" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        }) ?? throw new InvalidOperationException("cannot start the schema command");
        var output = schema.StandardOutput.ReadToEndAsync(ct);
        var errors = schema.StandardError.ReadToEndAsync(ct);
        await schema.WaitForExitAsync(ct).ConfigureAwait(false);
        if (schema.ExitCode != 0)
        {
            throw new InvalidOperationException($"schema apply failed ({schema.ExitCode}): {await output.ConfigureAwait(false)} {await errors.ConfigureAwait(false)}");
        }

        return store;
    }

    /// <summary>Starts a killed component again on its ports and data directory.</summary>
    public static Task RestartAsync(ChaosProcess component, CancellationToken ct) => component.StartAsync(StartTimeout, ct);

    public async ValueTask DisposeAsync()
    {
        // Gateways first, then writers, then NATS: the reverse of the start order.
        for (var i = _components.Count - 1; i >= 0; i--)
        {
            await _components[i].DisposeAsync().ConfigureAwait(false);
        }

        foreach (var component in _infrastructure)
        {
            await component.DisposeAsync().ConfigureAwait(false);
        }

        for (var attempt = 0; attempt < 5 && Directory.Exists(_root); attempt++)
        {
            try
            {
                Directory.Delete(_root, recursive: true);
            }
            catch (IOException)
            {
                await Task.Delay(200).ConfigureAwait(false);
            }
            catch (UnauthorizedAccessException)
            {
                break;
            }
        }
    }

    private ChaosProcess Server(string name, string kind, string role, string serverDll, int wsPort, int httpPort, IEnumerable<string> extra,
        IReadOnlyList<string> extraServerArgs, string logs, Stopwatch clock)
    {
        var data = Path.Combine(_root, name);
        Directory.CreateDirectory(data);
        var portsFile = Path.Combine(data, "ports.json");
        string[] args =
        [
            serverDll,
            "--role", role,
            $"--Gateway:WebSocketEndpoint=127.0.0.1:{wsPort}",
            $"--Gateway:HttpEndpoint=127.0.0.1:{httpPort}",
            $"--Gateway:DataDirectory={data}",
            $"--Gateway:PortsFile={portsFile}",
            $"--Gateway:Auth:SigningKey={Convert.ToBase64String(SigningKey)}",
            $"--Gateway:Auth:AdminKey={AdminKey}",
            .. ServerLauncher.LoadArgs,
            .. extra,
            .. extraServerArgs,
        ];
        return new ChaosProcess(name, kind, "dotnet", args,
            _ => File.Exists(portsFile) ? portsFile : null,
            (_, _) =>
            {
                File.Delete(portsFile);
                return Task.CompletedTask;
            },
            Path.Combine(logs, name + ".log"), clock);
    }

    private static readonly HashSet<int> Taken = [];

    /// <summary>A free loopback port, never one handed out before in this process.</summary>
    private static int FreePort()
    {
        while (true)
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            lock (Taken)
            {
                if (Taken.Add(port))
                {
                    return port;
                }
            }
        }
    }
}
