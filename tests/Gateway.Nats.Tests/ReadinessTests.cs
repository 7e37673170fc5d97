using System.Text.Json;

namespace Gateway.Nats.Tests;

/// <summary>
/// <c>/readyz</c> tells the truth about NATS: a gateway and a writer over a real nats-server turn 503 naming the
/// <c>nats</c> check once the server is killed, and 200 again once it is back on the same port (and
/// <c>gateway_nats_connected</c> follows). Polled with generous deadlines: how fast NATS.Net notices is not asserted.
/// </summary>
public sealed class ReadinessTests
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Readyz_turns_503_naming_nats_when_nats_server_dies_and_200_when_it_returns()
    {
        await using var nats = await NatsServer.StartAsync();
        await using var writer = await RoleHost.StartWriterAsync(nats.Url, "w1");
        await using var gateway = await RoleHost.StartGatewayAsync(nats.Url);

        foreach (var host in new[] { gateway, writer })
        {
            var (status, body) = await PollReadyzAsync(host, s => s.Status == 200);
            Assert.True(status == 200, $"not ready at start: {body}");
            Assert.Contains("\"nats\":\"Healthy\"", body, StringComparison.Ordinal);
        }

        Assert.Equal(1, await PollNatsConnectedAsync(gateway, 1));

        nats.Kill();
        foreach (var host in new[] { gateway, writer })
        {
            var (status, body) = await PollReadyzAsync(host, s => s.Status == 503 && s.Failing.Contains("nats"));
            Assert.True(status == 503, $"still {status} after nats-server was killed: {body}");
            using var doc = JsonDocument.Parse(body);
            Assert.Equal("Unhealthy", doc.RootElement.GetProperty("status").GetString());
            Assert.Contains("nats", doc.RootElement.GetProperty("failing").EnumerateArray().Select(e => e.GetString()));
            Assert.StartsWith("Unhealthy: not connected to NATS", doc.RootElement.GetProperty("checks").GetProperty("nats").GetString(), StringComparison.Ordinal);
        }

        Assert.Equal(0, await PollNatsConnectedAsync(gateway, 0));

        // Liveness is not readiness: the process is fine, it only should not get traffic.
        Assert.Equal("ok", await gateway.Http.GetStringAsync("/healthz"));

        await nats.RestartAsync();
        foreach (var host in new[] { gateway, writer })
        {
            var (status, body) = await PollReadyzAsync(host, s => s.Status == 200);
            Assert.True(status == 200, $"not ready again after nats-server came back: {body}");
        }

        Assert.Equal(1, await PollNatsConnectedAsync(gateway, 1));
    }

    /// <summary>gateway_nats_connected, polled until it is <paramref name="expected"/> or the deadline passed (the
    /// exporter may answer from a scrape a few hundred milliseconds old).</summary>
    private static async Task<double?> PollNatsConnectedAsync(RoleHost host, double expected)
    {
        var deadline = DateTime.UtcNow + Within;
        while (true)
        {
            var value = PrometheusText.Sum(PrometheusText.Parse(await host.Http.GetStringAsync("/metrics")), "gateway_nats_connected");
            if (value == expected || DateTime.UtcNow > deadline)
            {
                return value;
            }

            await Task.Delay(200);
        }
    }

    private static async Task<(int Status, string Body)> PollReadyzAsync(RoleHost host, Func<(int Status, string[] Failing), bool> done)
    {
        var deadline = DateTime.UtcNow + Within;
        while (true)
        {
            using var response = await host.Http.GetAsync("/readyz");
            var body = await response.Content.ReadAsStringAsync();
            using var doc = JsonDocument.Parse(body);
            string[] failing = doc.RootElement.TryGetProperty("failing", out var f) ? [.. f.EnumerateArray().Select(e => e.GetString()!)] : [];
            var status = (int)response.StatusCode;
            if (done((status, failing)) || DateTime.UtcNow > deadline)
            {
                return (status, body);
            }

            await Task.Delay(200);
        }
    }
}
