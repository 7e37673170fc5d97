using System.Collections.Concurrent;
using System.Net;
using System.Net.WebSockets;
using Gateway.Protocol;

namespace Gateway.Server.Tests;

/// <summary>Graceful drain on host stop: readiness, Drain frames, service during the grace, 1001, nothing acked lost.</summary>
public sealed class DrainTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public async Task Stopping_the_host_drains_connections_and_loses_no_acknowledged_send()
    {
        var dir = TestGateway.NewTempDirectory();
        try
        {
            var acked = new ConcurrentDictionary<ulong, string>(); // seq -> messageId
            var gw = await TestGateway.StartAsync(dir, "--Gateway:DrainGraceSeconds=2", "--Gateway:DrainJitterSeconds=1");
            using var http = new HttpClient { BaseAddress = gw.HttpUri, Timeout = TimeSpan.FromSeconds(10) };
            using (var ready = await http.GetAsync("/readyz"))
            {
                Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
                Assert.Contains("\"status\":\"Healthy\"", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }

            string[] members = ["alice", "bob", "carol", "dave"];
            await gw.CreateChatAsync("room", members);
            var subscribers = new List<WsClient>();
            foreach (var user in members[1..])
            {
                var client = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token(user));
                await client.SubscribeAsync(new ChatCursor("room", 0));
                await client.ReceiveAsync<SubscribedFrame>();
                await client.ReceiveAsync<CaughtUpFrame>();
                subscribers.Add(client);
            }

            await using var alice = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
            using var stopSending = new CancellationTokenSource();
            var window = new SemaphoreSlim(8, 8); // at most 8 sends in flight: steady, not a flood
            var sender = SendContinuouslyAsync(alice, window, stopSending.Token);
            var drainSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var acksAfterDrain = 0;
            var aliceReader = Task.Run(async () =>
            {
                var result = await ReadUntilCloseAsync(alice, frame =>
                {
                    if (frame is SendAckFrame ack)
                    {
                        Assert.True(acked.TryAdd(ack.Seq, ack.MessageId), $"seq {ack.Seq} acknowledged twice");
                        if (drainSeen.Task.IsCompleted)
                        {
                            Interlocked.Increment(ref acksAfterDrain);
                        }

                        window.Release();
                    }
                    else if (frame is DrainFrame)
                    {
                        drainSeen.TrySetResult();
                    }
                });
                stopSending.Cancel();
                return result;
            });
            var subscriberReaders = subscribers.Select(s => Task.Run(() => ReadUntilCloseAsync(s, frame =>
            {
                if (frame is DrainFrame)
                {
                    drainSeen.TrySetResult();
                }
            }))).ToList();

            // Traffic flows, then the host stops (as on SIGTERM).
            await Poll.UntilAsync(() => acked.Count >= 20, "20 acknowledged sends before the stop");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var stopping = gw.DisposeAsync().AsTask();

            await drainSeen.Task.WaitAsync(TimeSpan.FromSeconds(10));
            using (var readiness = await http.GetAsync("/readyz"))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, readiness.StatusCode);
                Assert.Contains("\"failing\":[\"drain\"]", await readiness.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }

            Assert.Equal("ok", await http.GetStringAsync("/healthz"));

            // New connections are refused with 503 while the drain runs.
            var (status, _) = await WsClient.ConnectRefusedAsync(gw.WebSocketUri, gw.Token("erin"));
            Assert.Equal(503, status);

            output.WriteLine($"drain seen + checks {clock.ElapsedMilliseconds} ms");
            var results = await Task.WhenAll(subscriberReaders.Append(aliceReader)).WaitAsync(TimeSpan.FromSeconds(20));
            foreach (var r in results)
            {
                Assert.NotNull(r.Drain);
                Assert.InRange(r.Drain!.ReconnectAfterMs, 0u, 1000u);
                Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, r.CloseStatus);
                Assert.Equal("server draining", r.CloseDescription);
            }

            // The connection was served during the grace: sends made after the Drain frame were acknowledged.
            Assert.True(acksAfterDrain > 0, "no send was acknowledged during the drain");
            await sender.WaitAsync(TimeSpan.FromSeconds(10));
            output.WriteLine($"all closed {clock.ElapsedMilliseconds} ms");
            await stopping.WaitAsync(TimeSpan.FromSeconds(20));
            output.WriteLine($"stopped {clock.ElapsedMilliseconds} ms");
            foreach (var s in subscribers)
            {
                await s.DisposeAsync();
            }

            output.WriteLine($"{acked.Count} acked, {acksAfterDrain} after drain");
            clock.Restart();

            // Everything acknowledged is durable: a fresh gateway on the same data replays every acked (seq, messageId).
            await using var again = await TestGateway.StartAsync(dir);
            await using var reader = await WsClient.ConnectAsync(again.WebSocketUri, again.Token("bob"));
            await reader.SubscribeAsync(new ChatCursor("room", 0));
            await reader.ReceiveAsync<SubscribedFrame>();
            var replayed = new Dictionary<ulong, string>();
            ServerFrame? frame;
            while ((frame = await reader.ReceiveAsync()) is MessageFrame m)
            {
                replayed[m.Message.Seq] = m.Message.MessageId;
            }

            Assert.IsType<CaughtUpFrame>(frame);
            output.WriteLine($"restart and replay {clock.ElapsedMilliseconds} ms");

            foreach (var (seq, messageId) in acked)
            {
                Assert.True(replayed.TryGetValue(seq, out var stored), $"acknowledged seq {seq} not replayed");
                Assert.Equal(messageId, stored);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Sends until cancelled or the socket is no longer open, keeping at most the window's count in flight.</summary>
    private static async Task SendContinuouslyAsync(WsClient client, SemaphoreSlim window, CancellationToken cancellationToken)
    {
        var i = 0;
        try
        {
            while (client.Socket.State == WebSocketState.Open)
            {
                await window.WaitAsync(cancellationToken);
                await client.SendTextAsync("room", $"message {i++}");

                // Paced (a few hundred a second), so the replay after the restart stays short.
                await Task.Delay(2, cancellationToken);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException)
        {
            // the server closed the connection (or the reader saw it close): done
        }
    }

    private static async Task<DrainResult> ReadUntilCloseAsync(WsClient client, Action<ServerFrame> onFrame)
    {
        DrainFrame? drain = null;
        while (true)
        {
            var frame = await client.ReceiveAsync(TimeSpan.FromSeconds(15));
            if (frame is null)
            {
                return new DrainResult(drain, client.CloseStatus, client.CloseDescription);
            }

            // Drain comes once per connection.
            if (frame is DrainFrame d)
            {
                Assert.Null(drain);
                drain = d;
            }

            onFrame(frame);
        }
    }

    private sealed record DrainResult(DrainFrame? Drain, WebSocketCloseStatus? CloseStatus, string? CloseDescription);
}
