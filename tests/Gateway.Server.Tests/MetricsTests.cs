using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Gateway.Protocol;

namespace Gateway.Server.Tests;

/// <summary>
/// <c>GET /metrics</c> of a real embedded gateway after real traffic: every instrument the operators' table names is there
/// with samples, under the Prometheus names the dashboards use, and promtool accepts the output.
/// </summary>
/// <remarks>Instruments are process-wide, so samples of other tests running in this process may add to the figures: the
/// assertions are about presence and at least this test's own traffic, never exact counts.</remarks>
public sealed class MetricsTests
{
    private static readonly string[] LoadArgs = ["--Gateway:SendsPerSecond=100000", "--Gateway:SendBurst=100000"];

    [Fact]
    public async Task Scrape_after_traffic_has_every_instrument_with_samples()
    {
        await using var gw = await TestGateway.StartAsync(null, LoadArgs);
        await Traffic.RunAsync(gw, "metrics", messages: 5);

        var names = new (string Name, (string, string)[] Labels)[]
        {
            ("gateway_build_info", [("role", "all")]),
            ("gateway_connections", []),
            ("gateway_delivery_lag_seconds_count", []),
            ("gateway_delivery_lag_seconds_bucket", [("le", "+Inf")]),
            ("gateway_send_duration_seconds_count", [("transport", "ws"), ("result", "ok")]),
            ("gateway_send_duration_seconds_count", [("transport", "http"), ("result", "ok")]),
            ("gateway_sends_total", [("transport", "ws"), ("result", "ok")]),
            ("gateway_sends_total", [("transport", "http"), ("result", "ok")]),
            ("gateway_sends_total", [("transport", "http"), ("result", "Unauthorized")]),
            ("gateway_commit_duration_seconds_count", []),
            ("gateway_commit_batch_size_count", []),
            ("gateway_commit_queue_depth", []),
            ("gateway_catchup_duration_seconds_count", []),
            ("gateway_catchup_size_count", []),
            ("gateway_catchup_messages_total", []),
            ("gateway_deliveries_total", []),
            ("gateway_outbound_queued", []),
            ("kestrel_active_connections", []),
            ("dotnet_process_cpu_time_seconds_total", []),
        };

        // The exporter caches a scrape briefly: poll until this test's own samples show.
        var samples = await ScrapeUntilAsync(gw.Http, s => names.All(n => PrometheusText.Sum(s, n.Name, n.Labels) is not null)
            && PrometheusText.Sum(s, "gateway_delivery_lag_seconds_count") >= 5);
        foreach (var (name, labels) in names)
        {
            Assert.True(PrometheusText.Sum(samples, name, labels) is not null, $"{name} {string.Join(',', labels)} missing from /metrics");
        }

        Assert.Equal(1, PrometheusText.Sum(samples, "gateway_build_info", ("role", "all")));
        Assert.True(PrometheusText.Sum(samples, "gateway_catchup_messages_total") >= 2);
        Assert.True(PrometheusText.Sum(samples, "gateway_commit_batch_size_sum") >= 7); // 5 WebSocket + 2 HTTP sends at least

        // No id of a chat, user or tenant in any label.
        Assert.DoesNotContain(samples, s => s.Labels.Values.Any(v => v.Contains("alice", StringComparison.Ordinal) || v.Contains("metrics-chat", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Promtool_accepts_the_output()
    {
        await using var gw = await TestGateway.StartAsync(null, LoadArgs);
        await Traffic.RunAsync(gw, "promtool", messages: 3);
        var text = await gw.Http.GetStringAsync("/metrics");
        Assert.Contains("gateway_delivery_lag_seconds_bucket", text, StringComparison.Ordinal);

        var (exitCode, output) = await PrometheusText.PromtoolCheckAsync(text);
        Assert.True(exitCode == 0, $"promtool check metrics exited {exitCode}: {output}");
    }

    [Fact]
    public async Task Metrics_are_served_on_the_http_listener_only()
    {
        await using var gw = await TestGateway.StartAsync();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var wsListener = new UriBuilder(gw.WebSocketUri) { Scheme = "http", Path = "/metrics" }.Uri;
        using var response = await http.GetAsync(wsListener);
        Assert.NotEqual(HttpStatusCode.OK, response.StatusCode);
        Assert.DoesNotContain("# TYPE", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        using var ok = await gw.Http.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task A_slow_consumer_close_is_counted_with_its_reason()
    {
        // A 64 KiB outbound bound: a subscriber that never reads overflows it once the socket's buffers are full.
        await using var gw = await TestGateway.StartAsync(null, [.. LoadArgs, "--Gateway:MaxOutboundBytes=65536"]);
        await gw.CreateChatAsync("slow-chat", "alice", "bob");
        await using var bob = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("bob"));
        await bob.SubscribeAsync(new ChatCursor("slow-chat", 0));
        await bob.ReceiveAsync<SubscribedFrame>();
        await bob.ReceiveAsync<CaughtUpFrame>();

        // bob reads nothing from here on; alice sends 16 KiB messages until the server gives up on bob.
        await using var alice = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
        var text = new string('x', 16 * 1024);
        var samples = new List<PromSample>();
        for (var i = 0; i < 2000 && PrometheusText.Sum(samples, "gateway_slow_consumer_closes_total", ("reason", "bytes")) is null; i++)
        {
            await alice.SendTextAsync("slow-chat", text);
            await alice.ReceiveAsync<SendAckFrame>();
            if (i % 50 == 49)
            {
                samples = PrometheusText.Parse(await gw.Http.GetStringAsync("/metrics"));
            }
        }

        samples = await ScrapeUntilAsync(gw.Http, s => PrometheusText.Sum(s, "gateway_slow_consumer_closes_total", ("reason", "bytes")) >= 1);
        Assert.True(PrometheusText.Sum(samples, "gateway_slow_consumer_closes_total", ("reason", "bytes")) >= 1);
    }

    [Fact]
    public async Task The_tracer_provider_listens_to_source_Gateway_and_OTLP_is_turned_on_by_its_endpoint_variable()
    {
        // OTLP towards a port nothing listens on: exports fail quietly in the background, the host serves as before.
        await using var gw = await TestGateway.StartAsync(null, "--OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9");
        using var source = new System.Diagnostics.ActivitySource("Gateway");
        Assert.True(source.HasListeners(), "no tracer provider listens to ActivitySource 'Gateway'");
        using (var activity = source.StartActivity("metrics-test"))
        {
            Assert.NotNull(activity); // sampled: a span of this source would be exported
        }

        var provider = gw.Services.GetService(typeof(OpenTelemetry.Trace.TracerProvider));
        Assert.NotNull(provider);
        using var ok = await gw.Http.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task Without_an_OTLP_endpoint_no_tracer_provider_samples_sends_for_nothing()
    {
        await using var gw = await TestGateway.StartAsync(null);
        Assert.Null(gw.Services.GetService(typeof(OpenTelemetry.Trace.TracerProvider)));
        using var ok = await gw.Http.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    internal static async Task<List<PromSample>> ScrapeUntilAsync(HttpClient http, Func<List<PromSample>, bool> done, int timeoutSeconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while (true)
        {
            var samples = PrometheusText.Parse(await http.GetStringAsync("/metrics"));
            if (done(samples) || DateTime.UtcNow > deadline)
            {
                return samples;
            }

            await Task.Delay(200);
        }
    }
}

/// <summary>A little real traffic on an embedded gateway: a chat of alice and bob, bob subscribed, alice sending over the
/// socket and over HTTP, one HTTP send without credentials, and a late subscriber that catches up from history.</summary>
internal static class Traffic
{
    public static async Task RunAsync(TestGateway gw, string prefix, int messages)
    {
        var chat = prefix + "-chat";
        await gw.CreateChatAsync(chat, "alice", "bob", "carol");
        await using var bob = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("bob"));
        await bob.SubscribeAsync(new ChatCursor(chat, 0));
        await bob.ReceiveAsync<SubscribedFrame>();
        await bob.ReceiveAsync<CaughtUpFrame>();

        await using var alice = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
        for (var i = 0; i < messages; i++)
        {
            await alice.SendTextAsync(chat, $"hello {i}");
            await alice.ReceiveAsync<SendAckFrame>();
            await bob.ReceiveAsync<MessageFrame>();
        }

        Assert.Equal(HttpStatusCode.Created, await SendHttpAsync(gw, chat, gw.Token("alice")));
        Assert.Equal(HttpStatusCode.Created, await SendHttpAsync(gw, chat, gw.Token("alice")));
        Assert.Equal(HttpStatusCode.Unauthorized, await SendHttpAsync(gw, chat, "not-a-token"));
        await bob.ReceiveAsync<MessageFrame>();
        await bob.ReceiveAsync<MessageFrame>();

        // carol joins late: catch-up replays what was sent.
        await using var carol = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("carol"));
        await carol.SubscribeAsync(new ChatCursor(chat, 0));
        await carol.ReceiveAsync<SubscribedFrame>();
        for (var i = 0; i < messages + 2; i++)
        {
            await carol.ReceiveAsync<MessageFrame>();
        }

        await carol.ReceiveAsync<CaughtUpFrame>();
    }

    private static async Task<HttpStatusCode> SendHttpAsync(TestGateway gw, string chat, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/chats/{chat}/messages")
        {
            Content = JsonContent.Create(new { contentType = "text/plain", text = "over http" }),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString("N"));
        using var response = await gw.Http.SendAsync(request);
        return response.StatusCode;
    }
}
