using System.Diagnostics;
using System.Globalization;
using Gateway.Cql;
using Gateway.Cql.TestPeer;

namespace Gateway.Benchmarks;

/// <summary>
/// Requests per second through ONE CQL connection (<c>ConnectionsPerHost = 1</c>, one node), multiplexed (N requests in
/// flight on their own stream ids) against one at a time (await each), same request: the store's prepared single-row
/// <c>SELECT head FROM chats WHERE tenant_id = ? AND chat_id = ?</c>. Runs alternate (A, B, A, B, ...) so that noise
/// from other processes on the machine lands on both modes.
/// </summary>
/// <remarks>
/// The server is the CQL test double from tests/Gateway.Cql.TestPeer, in this process, on the same cores as the client:
/// no Scylla can run where these benchmarks run. So the numbers are the client and the double together, not a Scylla
/// figure; what they show is what multiplexing one connection buys over a request-response loop.
/// </remarks>
internal static class CqlThroughput
{
    public static async Task<int> RunAsync(string[] args)
    {
        var seconds = Option(args, "--seconds", 5.0);
        var rounds = (int)Option(args, "--rounds", 3.0);
        var inFlight = (int)Option(args, "--in-flight", 256.0);
        var warmup = Option(args, "--warmup-seconds", 5.0);

        await using var peer = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Nodes = 1 });
        await using var cluster = await CqlCluster.ConnectAsync(new CqlClusterOptions
        {
            ContactPoints = [.. peer.ContactPoints],
            Port = peer.Port,
            ConnectionsPerHost = 1,
        });

        await cluster.QueryAsync("CREATE KEYSPACE bench WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
        await cluster.QueryAsync("CREATE TABLE bench.chats (tenant_id text, chat_id text, head bigint, created_at timestamp, PRIMARY KEY ((tenant_id, chat_id)))");
        await cluster.QueryAsync("INSERT INTO bench.chats (tenant_id, chat_id, head, created_at) VALUES ('tenant-0001', 'chat-0000000042', 123456, 1732000000000)");
        var select = await cluster.PrepareAsync("SELECT head FROM bench.chats WHERE tenant_id = ? AND chat_id = ?");
        CqlValue[] key = ["tenant-0001", "chat-0000000042"];

        Console.WriteLine($"cql-throughput: 1 node (in-process test peer), ConnectionsPerHost = 1, {Environment.ProcessorCount} CPUs, " +
            $"{(System.Runtime.GCSettings.IsServerGC ? "Server" : "Workstation")} GC; {rounds} rounds of {seconds:0.#} s per mode, " +
            $"{warmup:0.#} s warm-up per mode; multiplexed = {inFlight} in flight");

        // Warm-up: JIT tiers, pools and the peer's caches, both modes.
        await MeasureAsync(peer.Nodes[0], cluster, select, key, inFlight, warmup);
        await MeasureAsync(peer.Nodes[0], cluster, select, key, 1, warmup);

        var multiplexed = new List<Sample>();
        var sequential = new List<Sample>();
        Console.WriteLine();
        Console.WriteLine("| Round | Mode | Requests | Seconds | Requests/s | CPU µs/request (client + peer) | Allocated B/request (client + peer) | Max in flight seen by the peer |");
        Console.WriteLine("|---:|---|---:|---:|---:|---:|---:|---:|");
        for (var round = 1; round <= rounds; round++)
        {
            var a = await MeasureAsync(peer.Nodes[0], cluster, select, key, inFlight, seconds);
            multiplexed.Add(a);
            Print(round, $"multiplexed ({inFlight})", a);
            var b = await MeasureAsync(peer.Nodes[0], cluster, select, key, 1, seconds);
            sequential.Add(b);
            Print(round, "one at a time", b);
        }

        var medianA = Median(multiplexed.Select(s => s.PerSecond));
        var medianB = Median(sequential.Select(s => s.PerSecond));
        Console.WriteLine();
        Console.WriteLine($"median multiplexed:   {medianA,12:N0} requests/s (min {multiplexed.Min(s => s.PerSecond):N0}, max {multiplexed.Max(s => s.PerSecond):N0})");
        Console.WriteLine($"median one at a time: {medianB,12:N0} requests/s (min {sequential.Min(s => s.PerSecond):N0}, max {sequential.Max(s => s.PerSecond):N0})");
        Console.WriteLine($"ratio (median / median): {medianA / medianB:0.00}x; per round: {string.Join(", ", multiplexed.Zip(sequential, (x, y) => (x.PerSecond / y.PerSecond).ToString("0.00", CultureInfo.InvariantCulture) + "x"))}");
        return 0;
    }

    private static async Task<Sample> MeasureAsync(CqlTestNode node, CqlCluster cluster, CqlPrepared select, CqlValue[] key, int inFlight, double seconds)
    {
        node.ClearLog();   // also resets the node's high-water mark of requests in flight on one connection
        var process = Process.GetCurrentProcess();
        process.Refresh();
        var cpuBefore = process.TotalProcessorTime;
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: false);
        var stopwatch = Stopwatch.StartNew();
        var until = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
        var workers = new Task<long>[inFlight];
        for (var i = 0; i < inFlight; i++)
        {
            workers[i] = Task.Run(() => LoopAsync(cluster, select, key, until));
        }

        long requests = 0;
        foreach (var w in workers)
        {
            requests += await w;
        }

        stopwatch.Stop();
        process.Refresh();
        var cpu = process.TotalProcessorTime - cpuBefore;
        var allocated = GC.GetTotalAllocatedBytes(precise: false) - allocatedBefore;
        return new Sample(requests, stopwatch.Elapsed.TotalSeconds, cpu.TotalMicroseconds / requests, (double)allocated / requests, node.MaxInFlightPerConnection);
    }

    private static async Task<long> LoopAsync(CqlCluster cluster, CqlPrepared select, CqlValue[] key, long until)
    {
        long n = 0;
        while (Stopwatch.GetTimestamp() < until)
        {
            using var result = await cluster.ExecuteAsync(select, key);
            if (result.Rows is not { Count: 1 } rows || rows.GetInt64(0, 0) != 123456)
            {
                throw new InvalidOperationException("The SELECT did not return the row.");
            }

            n++;
        }

        return n;
    }

    private static void Print(int round, string mode, Sample s) => Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"| {round} | {mode} | {s.Requests:N0} | {s.Seconds:0.00} | {s.PerSecond:N0} | {s.CpuMicroseconds:0.0} | {s.AllocatedBytes:N0} | {s.ServerMaxInFlight} |"));

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static double Option(string[] args, string name, double fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? double.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    private readonly record struct Sample(long Requests, double Seconds, double CpuMicroseconds, double AllocatedBytes, int ServerMaxInFlight)
    {
        public double PerSecond => Requests / Seconds;
    }
}
