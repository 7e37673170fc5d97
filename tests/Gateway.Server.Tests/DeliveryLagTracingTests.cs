using System.Diagnostics;
using System.Diagnostics.Metrics;
using Gateway.Protocol;

namespace Gateway.Server.Tests;

[CollectionDefinition(nameof(AloneInProcess), DisableParallelization = true)]
public sealed class AloneInProcess;

/// <summary>
/// The delivery-lag histogram keeps its samples when tracing is on: a traced event takes the fanout path that opens a
/// span, and that path must pass the commit time on like the untraced one. Alone in the process (the histogram is
/// process-wide), so every sample the listener sees comes from this test's one delivery.
/// </summary>
[Collection(nameof(AloneInProcess))]
public sealed class DeliveryLagTracingTests
{
    [Fact]
    public async Task A_traced_message_delivered_live_records_its_delivery_lag()
    {
        using var spans = new SpanRecorder(); // a listener on source Gateway: tracing is on
        await using var gateway = await TestGateway.StartAsync();
        await gateway.CreateChatAsync("lag", "alice", "bob");
        await using var alice = await WsClient.ConnectAsync(gateway.WebSocketUri, gateway.Token("alice"));
        await using var bob = await WsClient.ConnectAsync(gateway.WebSocketUri, gateway.Token("bob"));
        await bob.SubscribeAsync(new ChatCursor("lag", 0));
        await bob.ReceiveMatchingAsync<CaughtUpFrame>(f => f.ChatId == "lag");

        var samples = 0;
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == "Gateway" && instrument.Name == "gateway.delivery.lag")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<double>((_, _, _, _) => Interlocked.Increment(ref samples));
        listener.Start();

        var client = new ActivityContext(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.Recorded);
        var id = alice.NextRequestId();
        await alice.SendFrameAsync(w => ClientFrameWriter.WriteSend(w, id, "lag", "k1", "text/plain", "hi"u8, null, TraceContext.Format(client), null));
        await alice.ReceiveMatchingAsync<SendAckFrame>(f => f.RequestId == id);
        await bob.ReceiveMatchingAsync<MessageFrame>(f => f.ChatId == "lag");
        await spans.WaitForAsync(s => s.DisplayName == Gateway.Domain.GatewayTracing.Fanout && s.TraceId == client.TraceId);

        // The frame was handed to bob's socket before bob read it, and the lag is recorded right then.
        Assert.Equal(1, Volatile.Read(ref samples));
    }
}
