using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Gateway.Protocol;

namespace Gateway.Server.Tests;

/// <summary>
/// A real Prometheus server (Debian's <c>prometheus</c>, started here on a free loopback port with its own config and
/// store in a temp directory) scrapes a running gateway every second while clients chat; Prometheus' own query API must
/// then show samples of the delivery-lag histogram. Proves the exposition is what a real scraper ingests, under the names
/// the dashboards and alerts use.
/// </summary>
public sealed class MetricsPrometheusTests
{
    [Fact]
    public async Task A_real_Prometheus_scrapes_delivery_lag_samples_from_a_running_gateway()
    {
        var binary = PrometheusText.FindBinary("prometheus");
        await using var gw = await TestGateway.StartAsync(null, "--Gateway:SendsPerSecond=100000", "--Gateway:SendBurst=100000");
        await using var prometheus = await PrometheusServer.StartAsync(binary, gw.HttpUri);

        await gw.CreateChatAsync("prom-chat", "alice", "bob");
        await using var bob = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("bob"));
        await bob.SubscribeAsync(new ChatCursor("prom-chat", 0));
        await bob.ReceiveAsync<SubscribedFrame>();
        await bob.ReceiveAsync<CaughtUpFrame>();
        await using var alice = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));

        // A message every 100 ms while Prometheus starts and scrapes (startup can be slow on a loaded machine: a generous
        // deadline, polled, never a timed assertion).
        var deadline = DateTime.UtcNow.AddSeconds(120);
        double? lagSamples = null;
        double? up = null;
        var sent = 0;
        while (DateTime.UtcNow < deadline)
        {
            await alice.SendTextAsync("prom-chat", $"m{sent++}");
            await alice.ReceiveAsync<SendAckFrame>();
            await bob.ReceiveAsync<MessageFrame>();
            if (sent % 10 == 0)
            {
                up = await prometheus.QueryScalarAsync("sum(up{job=\"chatgw\"})");
                lagSamples = await prometheus.QueryScalarAsync("sum(gateway_delivery_lag_seconds_count)");
                if (lagSamples > 0)
                {
                    break;
                }
            }

            await Task.Delay(100);
        }

        Assert.True(up == 1, $"Prometheus did not report the gateway target up (up = {up?.ToString(CultureInfo.InvariantCulture) ?? "no answer"}); its log: {prometheus.Log}");
        Assert.True(lagSamples > 0, $"no delivery-lag samples in Prometheus after {sent} messages (query answered {lagSamples?.ToString(CultureInfo.InvariantCulture) ?? "nothing"}); its log: {prometheus.Log}");

        // The histogram is usable as dashboards use it: a p99 over the scraped buckets.
        var p99 = await prometheus.QueryScalarAsync("histogram_quantile(0.99, sum by (le) (gateway_delivery_lag_seconds_bucket))");
        Assert.True(p99 is >= 0 and < 10, $"p99 of the delivery lag: {p99}");
    }

    /// <summary>One Prometheus process, killed (with its whole tree) and its directory removed on dispose.</summary>
    private sealed class PrometheusServer : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly string _dir;
        private readonly System.Text.StringBuilder _log = new();
        private readonly HttpClient _http;

        private PrometheusServer(Process process, string dir, int port)
        {
            _process = process;
            _dir = dir;
            _http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };
        }

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

        public static Task<PrometheusServer> StartAsync(string binary, Uri target)
        {
            var dir = TestGateway.NewTempDirectory();
            var port = FreePort();

            // Its own config and store: the Debian service (and its /etc/prometheus config) is neither used nor needed.
            var config = Path.Combine(dir, "prometheus.yml");
            File.WriteAllText(config, $"""
                global:
                  scrape_interval: 1s
                  scrape_timeout: 1s
                  evaluation_interval: 1s
                scrape_configs:
                  - job_name: chatgw
                    metrics_path: /metrics
                    static_configs:
                      - targets: ['{target.Authority}']
                """);
            var psi = new ProcessStartInfo(binary)
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
                UseShellExecute = false,
            };
            foreach (var a in (string[])[$"--config.file={config}", $"--storage.tsdb.path={Path.Combine(dir, "data")}",
                $"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"])
            {
                psi.ArgumentList.Add(a);
            }

            var process = Process.Start(psi) ?? throw new InvalidOperationException("prometheus did not start");
            var server = new PrometheusServer(process, dir, port);
            process.ErrorDataReceived += (_, e) => server.Append(e.Data);
            process.OutputDataReceived += (_, e) => server.Append(e.Data);
            process.BeginErrorReadLine();
            process.BeginOutputReadLine();
            return Task.FromResult(server);
        }

        /// <summary>The value of an instant query that yields one sample, or null (not ready yet, no data, no answer).</summary>
        public async Task<double?> QueryScalarAsync(string query)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"prometheus exited with {_process.ExitCode}: {Log}");
            }

            try
            {
                using var response = await _http.GetAsync("/api/v1/query?query=" + Uri.EscapeDataString(query));
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    return null;
                }

                using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
                var result = doc.RootElement.GetProperty("data").GetProperty("result");
                return result.GetArrayLength() == 0
                    ? null
                    : double.Parse(result[0].GetProperty("value")[1].GetString()!, NumberStyles.Float, CultureInfo.InvariantCulture);
            }
            catch (HttpRequestException)
            {
                return null; // not listening yet
            }
            catch (TaskCanceledException)
            {
                return null;
            }
        }

        public async ValueTask DisposeAsync()
        {
            _http.Dispose();
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            }

            _process.Dispose();
            try
            {
                Directory.Delete(_dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }

        private void Append(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (_log)
            {
                if (_log.Length < 20_000)
                {
                    _log.AppendLine(line);
                }
            }
        }

        private static int FreePort()
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
    }
}
