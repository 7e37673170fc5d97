using System.Diagnostics;
using System.Text.Json;

namespace Gateway.Cql.TestPeer.Tests;

/// <summary>
/// The independent oracle: the DataStax Python driver (python3-cassandra, run by /usr/bin/python3) uses the peer as it
/// would a real cluster; its observations come back as JSON.
/// </summary>
public sealed class OracleTests
{
    private static async Task<JsonElement> RunOracleAsync(CqlTestCluster cluster, params string[] extra)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "oracle", "driver_oracle.py");
        var psi = new ProcessStartInfo("/usr/bin/python3")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.ArgumentList.Add(script);
        psi.ArgumentList.Add(string.Join(",", cluster.Nodes.Take(2).Select(n => n.Ip.ToString())));
        psi.ArgumentList.Add(cluster.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        foreach (var e in extra)
        {
            psi.ArgumentList.Add(e);
        }

        if (!File.Exists("/usr/bin/python3"))
        {
            Assert.Fail("/usr/bin/python3 is missing: apt-get install python3 python3-cassandra");
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(true);
            Assert.Fail($"the oracle timed out; stderr: {await stderr}");
        }

        var output = (await stdout).Trim();
        var line = output.Split('\n').LastOrDefault(l => l.StartsWith('{')) ?? "";
        if (line.Length == 0)
        {
            Assert.Fail($"the oracle printed no JSON; stdout: {output}; stderr: {await stderr}");
        }

        var json = JsonDocument.Parse(line).RootElement;
        if (json.TryGetProperty("error", out var error) && error.GetString() == "missing-module")
        {
            Assert.Fail("The DataStax Python driver is missing: apt-get install python3-cassandra (test.sh installs it). " +
                        json.GetProperty("detail").GetString());
        }

        return json;
    }

    private static void AssertObservations(JsonElement o, int nodes)
    {
        Assert.False(o.TryGetProperty("error", out _), o.ToString());
        Assert.Equal(nodes, o.GetProperty("hosts").GetArrayLength());
        Assert.Equal("org.apache.cassandra.dht.Murmur3Partitioner", o.GetProperty("partitioner").GetString());
        Assert.Equal("[\"new\",2000]", o.GetProperty("lww").GetRawText());
        Assert.Equal(0, o.GetProperty("after_delete").GetArrayLength());
        Assert.Equal("back", o.GetProperty("after_rewrite").GetString());
        Assert.Equal("[\"ttl\",[\"x\",\"y\"],1]", o.GetProperty("ttl_before").GetRawText());
        Assert.Equal(0, o.GetProperty("ttl_after").GetArrayLength());
        Assert.Equal("[0]", o.GetProperty("routing_indexes").GetRawText());
        Assert.Equal(Enumerable.Range(1, 23).Reverse(), o.GetProperty("paged_seqs").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal("[5,6,7,8]", o.GetProperty("range_asc").GetRawText());
        Assert.Equal(23, o.GetProperty("count").GetInt32());
        Assert.Equal("[23,22,21]", o.GetProperty("limit").GetRawText());
        Assert.Equal("[[3,\"b3\"],[2,\"b2\"],[1,\"b1\"]]", o.GetProperty("batch_rows").GetRawText());
        Assert.Equal(1, o.GetProperty("batch_warnings").GetInt32());
        Assert.Equal("[true,false,\"first\"]", o.GetProperty("lwt").GetRawText());
        Assert.Equal("[true,false,\"third\"]", o.GetProperty("cas").GetRawText());
        Assert.Equal("InvalidRequest", o.GetProperty("invalid").GetString());
    }

    [Fact]
    public async Task Python_driver_works_against_one_node()
    {
        await using var cluster = await CqlTestCluster.StartAsync();
        AssertObservations(await RunOracleAsync(cluster), 1);
    }

    [Fact]
    public async Task Python_driver_works_against_three_nodes_and_routes_to_replicas()
    {
        await using var cluster = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Nodes = 3 });
        AssertObservations(await RunOracleAsync(cluster), 3);
        // Token-aware routing: every EXECUTE with a bound partition key went to its primary replica.
        var executes = cluster.Nodes.SelectMany(n => n.Log).Where(r => r.Opcode == 0x0A && r.Token is not null).ToList();
        Assert.NotEmpty(executes);
        Assert.All(executes, r => Assert.True(r.IsReplica, $"token {r.Token} not routed to its replica"));
        Assert.True(cluster.Nodes.Count(n => n.Requests(0x0A) > 0) >= 1);
    }

    [Fact]
    public async Task Python_driver_authenticates_with_plain_text_credentials()
    {
        await using var cluster = await CqlTestCluster.StartAsync(
            new CqlTestClusterOptions { Nodes = 2, Username = "app", Password = "s3cret" });
        AssertObservations(await RunOracleAsync(cluster, "app", "s3cret"), 2);
        var denied = await RunOracleAsync(cluster, "app", "wrong");
        Assert.Equal("auth", denied.GetProperty("error").GetString());
    }
}
