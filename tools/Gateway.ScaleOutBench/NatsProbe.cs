using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Gateway.Tools.Common;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace Gateway.ScaleOutBench;

/// <summary>
/// Measures the parts of the distributed send path from the bench process, against the deployment's own nats-server,
/// at the latency test's rate: (1) a core NATS request/reply between two connections (the gateway → writer hop, without
/// the writer's work); (2) a JetStream append to a file-backed stream with the writer's headers
/// (<c>Nats-Expected-Last-Subject-Sequence</c> + <c>Nats-Msg-Id</c>); (3) append issued → the stream's republished copy
/// received on a core subscription (what a gateway's live subscription sees).
/// </summary>
internal static class NatsProbe
{
    /// <summary>Samples per part: 2 s each at 200/s.</summary>
    private const int Samples = 400;

    public static async Task<ProbeResult> RunAsync(string url, double rate, CancellationToken ct)
    {
        await using var requester = new NatsConnection(NatsOpts.Default with { Url = url, Name = "scaleout-probe-requester" });
        await using var responder = new NatsConnection(NatsOpts.Default with { Url = url, Name = "scaleout-probe-responder" });
        await requester.ConnectAsync().ConfigureAwait(false);
        await responder.ConnectAsync().ConfigureAwait(false);
        var interval = TimeSpan.FromSeconds(1 / rate);
        var payload = new byte[100];
        var opts = new NatsSubOpts { Timeout = TimeSpan.FromSeconds(5) };

        // (1) Core request/reply.
        var core = Histograms.NewConcurrent();
        await using (var echo = await responder.SubscribeCoreAsync<byte[]>("scaleout.probe.echo", cancellationToken: ct).ConfigureAwait(false))
        {
            var serve = Task.Run(async () =>
            {
                await foreach (var msg in echo.Msgs.ReadAllAsync(ct).ConfigureAwait(false))
                {
                    await msg.ReplyAsync(msg.Data, cancellationToken: ct).ConfigureAwait(false);
                }
            }, ct);

            // A PING answered means the server has processed the SUB sent before it on that connection; without
            // this, the first request can race the subscription and get "no responders".
            await responder.PingAsync(ct).ConfigureAwait(false);
            for (var i = 0; i < Samples; i++)
            {
                var t0 = Stopwatch.GetTimestamp();
                await requester.RequestAsync<byte[], byte[]>("scaleout.probe.echo", payload, replyOpts: opts, cancellationToken: ct).ConfigureAwait(false);
                Histograms.Record(core, t0, Stopwatch.GetTimestamp());
                await Task.Delay(interval, ct).ConfigureAwait(false);
            }

            await echo.UnsubscribeAsync().ConfigureAwait(false);
            await serve.ConfigureAwait(false);
        }

        // (2) + (3) JetStream append with CAS + dedup headers, and its republished copy.
        var js = new NatsJSContext(requester);
        await js.CreateStreamAsync(new StreamConfig("SCALEOUT_PROBE", ["scaleout.probe.log.>"])
        {
            Storage = StreamConfigStorage.File,
            Republish = new Republish { Src = ">", Dest = "scaleout.probe.live.>" },
        }, ct).ConfigureAwait(false);
        var append = Histograms.NewConcurrent();
        var republish = Histograms.NewConcurrent();
        var issued = new long[Samples];
        var seen = 0;
        await using var live = await responder.SubscribeCoreAsync<byte[]>("scaleout.probe.live.scaleout.probe.log.c1", cancellationToken: ct).ConfigureAwait(false);
        await responder.PingAsync(ct).ConfigureAwait(false);
        var watch = Task.Run(async () =>
        {
            await foreach (var msg in live.Msgs.ReadAllAsync(ct).ConfigureAwait(false))
            {
                var now = Stopwatch.GetTimestamp();
                var i = BitConverter.ToInt32(msg.Data);
                Histograms.Record(republish, Volatile.Read(ref issued[i]), now);
                if (Interlocked.Increment(ref seen) == Samples)
                {
                    return;
                }
            }
        }, ct);

        ulong last = 0;
        for (var i = 0; i < Samples; i++)
        {
            var headers = new NatsHeaders
            {
                ["Nats-Expected-Last-Subject-Sequence"] = last.ToString(CultureInfo.InvariantCulture),
                ["Nats-Msg-Id"] = "probe-" + i.ToString(CultureInfo.InvariantCulture),
            };
            BitConverter.TryWriteBytes(payload, i);
            var t0 = Stopwatch.GetTimestamp();
            Volatile.Write(ref issued[i], t0);
            var reply = await requester.RequestAsync<byte[], byte[]>("scaleout.probe.log.c1", payload, headers, replyOpts: opts, cancellationToken: ct)
                .ConfigureAwait(false);
            Histograms.Record(append, t0, Stopwatch.GetTimestamp());
            using var ack = JsonDocument.Parse(reply.Data);
            if (ack.RootElement.TryGetProperty("error", out var error))
            {
                throw new InvalidOperationException("probe append refused: " + error);
            }

            last = ack.RootElement.GetProperty("seq").GetUInt64();
            await Task.Delay(interval, ct).ConfigureAwait(false);
        }

        await watch.WaitAsync(TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
        return new ProbeResult(Percentiles.Of(core), Percentiles.Of(append), Percentiles.Of(republish));
    }
}
