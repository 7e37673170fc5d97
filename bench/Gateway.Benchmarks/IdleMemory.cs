using System.Diagnostics;
using System.Diagnostics.Tracing;
using System.Globalization;
using Gateway.Benchmarks.Support;
using Gateway.Server.Auth;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Runtime;
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;
using Microsoft.IdentityModel.Tokens;

namespace Gateway.Benchmarks;

/// <summary>
/// <c>idle-memory</c> mode: memory per idle, authenticated, subscribed connection, as the slope of the server's RSS
/// against the connection count (issue 5's idle scenario).
/// </summary>
/// <remarks>
/// <para>The gateway runs as a child process (the Release build of Gateway.Server, embedded mode). The probe opens
/// connections in steps up to N; each is authenticated (HS256 bearer token, one user per connection), subscribed to one
/// chat of 100 members and caught up. At every step the probe forces a full blocking GC in the server from outside,
/// through the runtime's diagnostic port (an EventPipe session with the GCHeapCollect keyword, which is how
/// dotnet-gcdump induces its GC; no hook in the server), waits a second, and reads VmRSS / RssAnon from
/// <c>/proc/&lt;pid&gt;/status</c> and the managed heap size from that GC's GCHeapStats event. The slopes are
/// least-squares fits over the steps.</para>
/// <para><c>--types</c> also walks the server's managed heap (ClrMD, attached with ptrace while the server is suspended)
/// at the first and the last non-zero step and prints the types whose live bytes grew, per connection.</para>
/// </remarks>
internal static class IdleMemory
{
    private const string Tenant = "t1";
    private const int MembersPerChat = 100;

    public static async Task<int> RunAsync(string[] args)
    {
        int connections = IntArg(args, "--connections", 15_000);
        int steps = IntArg(args, "--steps", 5);
        bool types = args.Contains("--types");
        string? serverDll = StringArg(args, "--server-dll", "") is { Length: > 0 } d ? Path.GetFullPath(d) : null;
        string gc = StringArg(args, "--gc", "both");
        if (gc is not ("both" or "server" or "workstation"))
        {
            Console.Error.WriteLine("--gc must be both, server or workstation");
            return 2;
        }

        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var e in args.Where(a => a.StartsWith("--env=", StringComparison.Ordinal)))
        {
            var kv = e["--env=".Length..].Split('=', 2);
            env[kv[0]] = kv[1];
        }

        // One process holds at most ~19,900 descriptors here (open-files limit 20,000); beyond that use the load tool.
        if (connections is < 1 or > 19_000)
        {
            Console.Error.WriteLine("--connections must be 1..19000 (one probe process; the open-files limit is 20,000)");
            return 2;
        }

        if (gc == "both")
        {
            // One probe process per GC mode: each run leaves ~15,000 closed sockets and a ClrMD session behind, and a
            // fresh process measures the second mode under the same conditions as the first.
            foreach (var mode in new[] { "server", "workstation" })
            {
                int rc = await RunChildProbeAsync(args, mode).ConfigureAwait(false);
                if (rc != 0)
                {
                    return rc;
                }
            }

            return 0;
        }

        Console.WriteLine($"# idle-memory  ({System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}, " +
            $"{Environment.ProcessorCount} cores, {connections:N0} connections in {steps} steps" +
            (env.Count > 0 ? ", " + string.Join(' ', env.Select(kv => $"{kv.Key}={kv.Value}")) : "") +
            (serverDll is not null ? ", server " + serverDll : "") + ")");
        await RunOneAsync(connections, steps, gc == "server", env, types, serverDll).ConfigureAwait(false);
        return 0;
    }

    /// <summary>The <c>heap-census PID</c> helper mode (run by the probe itself).</summary>
    public static int PrintHeapCensus(int pid) => HeapCensus.Print(pid);

    private static async Task<int> RunChildProbeAsync(string[] args, string mode)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false };
        psi.ArgumentList.Add(typeof(IdleMemory).Assembly.Location);
        psi.ArgumentList.Add("idle-memory");
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--gc")
            {
                i++;
                continue;
            }

            psi.ArgumentList.Add(args[i]);
        }

        psi.ArgumentList.Add("--gc");
        psi.ArgumentList.Add(mode);
        using var child = Process.Start(psi) ?? throw new InvalidOperationException("could not start the probe");
        await child.WaitForExitAsync().ConfigureAwait(false);
        return child.ExitCode;
    }

    private static async Task RunOneAsync(int connections, int steps, bool serverGc, Dictionary<string, string> env, bool types,
        string? serverDll)
    {
        await using var gateway = await GatewayChild.StartAsync(serverGc, env, serverDll).ConfigureAwait(false);
        var key = new SymmetricSecurityKey(gateway.SigningKey);
        int chats = (connections + MembersPerChat - 1) / MembersPerChat;
        for (int c = 0; c < chats; c++)
        {
            var members = Enumerable.Range(c * MembersPerChat, MembersPerChat).Select(i => $"u{i}").ToArray();
            await gateway.CreateChatAsync(Tenant, $"c{c}", members).ConfigureAwait(false);
        }

        var clients = new List<IdleClient>(connections);
        var points = new List<Sample>();
        HeapCensus? first = null;
        HeapCensus? last = null;
        try
        {
            // Warm-up: a few connections so the first measured step does not carry one-time costs (JIT, pools, RocksDB).
            await OpenAsync(gateway, key, clients, Math.Min(100, connections)).ConfigureAwait(false);
            var gcInfo = await InducedGc.RunAsync(gateway.Pid).ConfigureAwait(false);
            Console.WriteLine();
            Console.WriteLine($"## {(serverGc ? "Server" : "Workstation")} GC (DOTNET_gcServer={(serverGc ? 1 : 0)}; server reports " +
                $"{gcInfo.Description})");
            Console.WriteLine();
            Console.WriteLine("| Connections | VmRSS (KiB) | RssAnon (KiB) | Managed heap after GC (KiB) | Threads | Open s |");
            Console.WriteLine("|---:|---:|---:|---:|---:|---:|");
            points.Add(await SampleAsync(gateway.Pid, clients.Count, TimeSpan.Zero).ConfigureAwait(false));
            for (int s = 1; s <= steps; s++)
            {
                int target = (int)((long)connections * s / steps);
                var sw = Stopwatch.StartNew();
                await OpenAsync(gateway, key, clients, target).ConfigureAwait(false);
                points.Add(await SampleAsync(gateway.Pid, clients.Count, sw.Elapsed).ConfigureAwait(false));
                if (types && s == 1)
                {
                    first = HeapCensus.Take(gateway.Pid, clients.Count);
                }
            }

            if (types)
            {
                last = HeapCensus.Take(gateway.Pid, clients.Count);
            }

            int failed = clients.Count(c => c.Failure is not null);
            if (failed > 0)
            {
                Console.WriteLine($"**{failed} connections failed while idle** (first: {clients.First(c => c.Failure is not null).Failure}); the slope is void.");
            }
        }
        finally
        {
            foreach (var c in clients)
            {
                await c.DisposeAsync().ConfigureAwait(false);
            }
        }

        Console.WriteLine();
        Console.WriteLine($"Slope (least squares over {points.Count} steps): VmRSS {Slope(points, p => p.RssKiB):N0} B/connection, " +
            $"RssAnon {Slope(points, p => p.AnonKiB):N0} B/connection, managed heap {Slope(points, p => p.HeapBytes / 1024.0):N0} B/connection");
        if (first is not null && last is not null)
        {
            HeapCensus.PrintGrowth(first, last);
        }
    }

    private static async Task OpenAsync(GatewayChild gateway, SymmetricSecurityKey key, List<IdleClient> clients, int target)
    {
        // 32 handshakes in flight: enough to keep the server busy without a SYN backlog overflow.
        const int Parallel = 32;
        var pending = new List<Task<IdleClient>>();
        int next = clients.Count;
        while (clients.Count + pending.Count < target || pending.Count > 0)
        {
            while (pending.Count < Parallel && clients.Count + pending.Count < target)
            {
                int i = next++;
                string token = JwtAuthenticator.Mint(key, Tenant, $"u{i}", TimeSpan.FromHours(24));
                pending.Add(IdleClient.OpenAsync(gateway.WebSocket, null, gateway.Path, token, $"c{i / MembersPerChat}",
                    TimeSpan.FromSeconds(30)));
            }

            var done = await Task.WhenAny(pending).ConfigureAwait(false);
            pending.Remove(done);
            clients.Add(await done.ConfigureAwait(false));
        }
    }

    private static async Task<Sample> SampleAsync(int pid, int connections, TimeSpan elapsed)
    {
        var gc = await InducedGc.RunAsync(pid).ConfigureAwait(false);
        // Give the GC's decommit and the kernel's accounting a moment to settle.
        await Task.Delay(1000).ConfigureAwait(false);
        var status = ReadStatus(pid);
        var sample = new Sample(connections, status["VmRSS"], status["RssAnon"], gc.HeapBytes, (int)status["Threads"]);
        Console.WriteLine($"| {connections:N0} | {sample.RssKiB:N0} | {sample.AnonKiB:N0} | {sample.HeapBytes / 1024:N0} | {sample.Threads} | " +
            $"{elapsed.TotalSeconds:F1} |");
        return sample;
    }

    private static Dictionary<string, long> ReadStatus(int pid)
    {
        var values = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            var parts = line.Split(':', 2);
            if (parts.Length == 2 && parts[0] is "VmRSS" or "RssAnon" or "RssFile" or "Threads")
            {
                values[parts[0]] = long.Parse(parts[1].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            }
        }

        return values;
    }

    /// <summary>Least-squares slope of y (KiB) against the connection count, in bytes per connection.</summary>
    private static double Slope(List<Sample> points, Func<Sample, double> kib)
    {
        double n = points.Count;
        double mx = points.Average(p => (double)p.Connections);
        double my = points.Average(p => kib(p));
        double sxy = points.Sum(p => (p.Connections - mx) * (kib(p) - my));
        double sxx = points.Sum(p => (p.Connections - mx) * (p.Connections - mx));
        return n < 2 || sxx == 0 ? double.NaN : sxy / sxx * 1024;
    }

    private static int IntArg(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    private static string StringArg(string[] args, string name, string fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }

    private readonly record struct Sample(int Connections, long RssKiB, long AnonKiB, long HeapBytes, int Threads);

    /// <summary>Forces a blocking gen-2 GC in another .NET process through its diagnostic port and reports its heap stats.</summary>
    private static class InducedGc
    {
        private const long GcKeyword = 0x1;
        private const long GcHeapCollectKeyword = 0x800000;

        public static async Task<GcResult> RunAsync(int pid)
        {
            var client = new DiagnosticsClient(pid);
            var providers = new[]
            {
                new EventPipeProvider("Microsoft-Windows-DotNETRuntime", EventLevel.Informational, GcKeyword | GcHeapCollectKeyword),
            };
            using var session = client.StartEventPipeSession(providers, requestRundown: false);
            using var source = new EventPipeEventSource(session.EventStream);
            var result = new TaskCompletionSource<GcResult>(TaskCreationOptions.RunContinuationsAsynchronously);
            bool induced = false;
            string type = "";
            source.Clr.GCStart += e =>
            {
                induced = e.Reason is GCReason.Induced or GCReason.InducedNotForced or GCReason.InducedLowMemory || e.Depth == 2;
                type = $"gen{e.Depth} {e.Type}, reason {e.Reason}";
            };
            source.Clr.GCHeapStats += e =>
            {
                if (induced)
                {
                    long heap = e.GenerationSize0 + e.GenerationSize1 + e.GenerationSize2 + e.GenerationSize3 + e.GenerationSize4;
                    result.TrySetResult(new GcResult(heap, $"{type}; heaps after GC: {e.GenerationSize0 / 1024:N0} / " +
                        $"{e.GenerationSize1 / 1024:N0} / {e.GenerationSize2 / 1024:N0} KiB gen0/1/2, LOH {e.GenerationSize3 / 1024:N0} KiB, " +
                        $"POH {e.GenerationSize4 / 1024:N0} KiB, GC handles {e.GCHandleCount:N0}"));
                }
            };
            var processing = Task.Run(() => source.Process());
            try
            {
                return await result.Task.WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
            }
            finally
            {
                session.Stop();
                await processing.WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
            }
        }
    }

    private readonly record struct GcResult(long HeapBytes, string Description);

    /// <summary>Live objects by type in another .NET process (ClrMD heap walk, process suspended while it runs).</summary>
    private sealed class HeapCensus
    {
        private HeapCensus(int connections, Dictionary<string, (long Count, long Bytes)> byType)
        {
            Connections = connections;
            ByType = byType;
        }

        public int Connections { get; }

        public Dictionary<string, (long Count, long Bytes)> ByType { get; }

        /// <summary>Walks the heap from a short-lived child process (<c>heap-census PID</c>): attaching ClrMD twice in one
        /// process has crashed it here, and a crash there costs only the census.</summary>
        public static HeapCensus? Take(int pid, int connections)
        {
            var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true };
            psi.ArgumentList.Add(typeof(IdleMemory).Assembly.Location);
            psi.ArgumentList.Add("heap-census");
            psi.ArgumentList.Add(pid.ToString(CultureInfo.InvariantCulture));
            using var child = Process.Start(psi)!;
            var byType = new Dictionary<string, (long Count, long Bytes)>(StringComparer.Ordinal);
            string? line;
            while ((line = child.StandardOutput.ReadLine()) is not null)
            {
                var parts = line.Split('\t', 3);
                if (parts.Length == 3)
                {
                    byType[parts[2]] = (long.Parse(parts[0], CultureInfo.InvariantCulture), long.Parse(parts[1], CultureInfo.InvariantCulture));
                }
            }

            child.WaitForExit();
            if (child.ExitCode != 0)
            {
                Console.WriteLine($"(heap census failed: exit code {child.ExitCode})");
                return null;
            }

            return new HeapCensus(connections, byType);
        }

        /// <summary>The <c>heap-census PID</c> mode: prints count, bytes and type name of every object type, tab-separated.</summary>
        public static int Print(int pid)
        {
            var byType = new Dictionary<string, (long Count, long Bytes)>(StringComparer.Ordinal);
            using (var target = DataTarget.AttachToProcess(pid, suspend: true))
            {
                using var runtime = target.ClrVersions[0].CreateRuntime();
                foreach (var obj in runtime.Heap.EnumerateObjects())
                {
                    if (obj.IsFree || obj.Type is null)
                    {
                        continue;
                    }

                    string name = obj.Type.Name ?? "?";
                    byType.TryGetValue(name, out var v);
                    byType[name] = (v.Count + 1, v.Bytes + (long)obj.Size);
                }
            }

            foreach (var (name, (count, bytes)) in byType)
            {
                Console.WriteLine($"{count}\t{bytes}\t{name}");
            }

            return 0;
        }

        public static void PrintGrowth(HeapCensus first, HeapCensus last)
        {
            double n = last.Connections - first.Connections;
            Console.WriteLine();
            Console.WriteLine($"Heap growth by type between {first.Connections:N0} and {last.Connections:N0} connections " +
                "(objects and bytes per added connection; live and not-yet-collected objects in the walked segments):");
            Console.WriteLine();
            Console.WriteLine("| Type | Objects/conn | Bytes/conn |");
            Console.WriteLine("|---|---:|---:|");
            var rows = last.ByType
                .Select(kv =>
                {
                    first.ByType.TryGetValue(kv.Key, out var f);
                    return (Type: kv.Key, Count: (kv.Value.Count - f.Count) / n, Bytes: (kv.Value.Bytes - f.Bytes) / n);
                })
                .Where(r => r.Bytes >= 4)
                .OrderByDescending(r => r.Bytes)
                .ToList();
            foreach (var r in rows.Take(60))
            {
                Console.WriteLine($"| `{r.Type}` | {r.Count:F2} | {r.Bytes:F0} |");
            }

            Console.WriteLine($"| **total (all types)** | {rows.Sum(r => r.Count):F1} | {rows.Sum(r => r.Bytes):F0} |");
        }
    }
}
