using Gateway.Protocol;

namespace Gateway.Nats.Tests;

/// <summary>
/// The distributed instruments after real traffic over a real nats-server: delivery lag on the receiving gateway (measured
/// from the writer's append time), RPC latency on the sending gateway, JetStream appends, commits and a lost CAS on the
/// writers, the NATS connection gauge and the projector's lag.
/// </summary>
/// <remarks>Hosts share this process and the instruments are process-wide, so one host's scrape can include another's
/// samples; each figure is read from the host that produces it in production, and only presence and this test's own
/// traffic are asserted.</remarks>
public sealed class MetricsTests
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Gateways_and_writers_export_the_distributed_instruments()
    {
        await using var deployment = await TwoGateways.StartAsync();
        await using var writer2 = await RoleHost.StartWriterAsync(deployment.Nats.Url, "w2");
        var (gatewayA, gatewayB, writer1) = (deployment.GatewayA, deployment.GatewayB, deployment.Writer);

        await using var alice = await WsClient.ConnectAsync(gatewayA.WebSocketUri, RoleHost.Token("alice"));
        await using var bob = await WsClient.ConnectAsync(gatewayB.WebSocketUri, RoleHost.Token("bob"));
        Assert.Equal(ErrorCode.None, (await bob.SubscribeAsync("c1")).Code);
        for (var i = 1; i <= 3; i++)
        {
            Assert.IsType<SendAckFrame>(await alice.SendAndAckAsync("c1", $"m{i}"));
        }

        await bob.ReceiveUntilAsync("c1", 3, Within);

        // Two writers taking turns on one chat: the one whose cached position is stale loses the compare-and-set once
        // and retries (the writer's own HTTP send goes straight to its write service).
        Assert.Equal(201, (await writer2.SendHttpAsync("c1", "alice", "w2-a", "from w2")).Status);
        Assert.Equal(201, (await writer1.SendHttpAsync("c1", "alice", "w1-a", "from w1")).Status);
        Assert.Equal(201, (await writer2.SendHttpAsync("c1", "alice", "w2-b", "from w2 again")).Status);
        await bob.ReceiveUntilAsync("c1", 6, Within);

        var atB = await ScrapeUntilAsync(gatewayB, s => PrometheusText.Sum(s, "gateway_delivery_lag_seconds_count") >= 6);
        Assert.True(PrometheusText.Sum(atB, "gateway_delivery_lag_seconds_count") >= 6, "delivery lag on the receiving gateway");
        Assert.Equal(1, PrometheusText.Sum(atB, "gateway_nats_connected"));
        Assert.Equal(1, PrometheusText.Sum(atB, "gateway_build_info", ("role", "gateway")));

        var atA = await ScrapeUntilAsync(gatewayA, s => PrometheusText.Sum(s, "gateway_rpc_duration_seconds_count", ("op", "send"), ("result", "ok")) >= 3);
        Assert.True(PrometheusText.Sum(atA, "gateway_rpc_duration_seconds_count", ("op", "send"), ("result", "ok")) >= 3, "RPC latency of sends on the sending gateway");
        Assert.True(PrometheusText.Sum(atA, "gateway_rpc_duration_seconds_count", ("op", "read")) >= 1, "RPC latency of reads (membership checks)");
        Assert.True(PrometheusText.Sum(atA, "gateway_sends_total", ("transport", "ws"), ("result", "ok")) >= 3);

        var atWriter = await ScrapeUntilAsync(writer2, s => PrometheusText.Sum(s, "gateway_cas_retries_total") >= 1
            && PrometheusText.Sum(s, "gateway_projector_lag") is not null);
        Assert.True(PrometheusText.Sum(atWriter, "gateway_cas_retries_total") >= 1, "a lost compare-and-set counted");
        Assert.True(PrometheusText.Sum(atWriter, "gateway_jetstream_append_duration_seconds_count", ("result", "stored")) >= 6,
            string.Join("\n", atWriter.Where(x => x.Name.StartsWith("gateway_", StringComparison.Ordinal) && !x.Name.EndsWith("_bucket", StringComparison.Ordinal)).Select(x => $"{x.Name} {string.Join(',', x.Labels)} {x.Value}")));
        // The stale writer's append is refused either by the CAS or, first, by the event-number claim (a duplicate).
        Assert.True((PrometheusText.Sum(atWriter, "gateway_jetstream_append_duration_seconds_count", ("result", "wrong_last_sequence")) ?? 0)
            + (PrometheusText.Sum(atWriter, "gateway_jetstream_append_duration_seconds_count", ("result", "duplicate")) ?? 0) >= 1);
        Assert.True(PrometheusText.Sum(atWriter, "gateway_commit_duration_seconds_count") >= 6);
        Assert.True(PrometheusText.Sum(atWriter, "gateway_commit_batch_size_count") >= 6);
        Assert.NotNull(PrometheusText.Sum(atWriter, "gateway_commit_queue_depth"));
        Assert.NotNull(PrometheusText.Sum(atWriter, "gateway_projector_lag"));
        Assert.True(PrometheusText.Sum(atWriter, "gateway_projector_applied_total") >= 1);
        Assert.Equal(1, PrometheusText.Sum(atWriter, "gateway_build_info", ("role", "writer")));
        Assert.Equal(1, PrometheusText.Sum(atWriter, "gateway_nats_connected"));
    }

    private static async Task<List<PromSample>> ScrapeUntilAsync(RoleHost host, Func<List<PromSample>, bool> done)
    {
        var deadline = DateTime.UtcNow + Within;
        while (true)
        {
            var samples = PrometheusText.Parse(await host.Http.GetStringAsync("/metrics"));
            if (done(samples) || DateTime.UtcNow > deadline)
            {
                return samples;
            }

            await Task.Delay(200);
        }
    }
}
