using System.Net;
using System.Net.Sockets;
using System.Text;
using Gateway.Protocol;
using Xunit.Abstractions;

namespace Gateway.Server.Tests;

/// <summary>Session-level hardening: rate limits, typing, token refresh and expiry, slow consumers. Over real sockets, except
/// where a check depends on time passing: those run in process on a manual clock (<see cref="SessionHarness"/>).</summary>
public sealed class HardeningTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Sends_over_the_per_user_rate_get_RateLimited_with_retry_after_across_connections()
    {
        // In process on a manual clock: the advertised wait is checked to the millisecond, with no sleep.
        await using var h = SessionHarness.Create(new GatewayOptions { SendsPerSecond = 2, SendBurst = 3 });
        await h.CreateChatAsync("general", "alice");
        var alice = new Gateway.Server.Connections.ConnectionLimiter.User(); // what the limiter shares between her connections
        var a = await h.ConnectAsync("alice", TimeSpan.FromHours(1), alice);
        var b = await h.ConnectAsync("alice", TimeSpan.FromHours(1), alice);

        // The burst of 3 is shared by both of alice's connections.
        await a.SendTextAsync("general", "1", "k1");
        Assert.Equal(1UL, (await a.ReceiveAsync<SendAckFrame>()).Seq);
        await a.SendTextAsync("general", "2", "k2");
        Assert.Equal(2UL, (await a.ReceiveAsync<SendAckFrame>()).Seq);
        await b.SendTextAsync("general", "3", "k3");
        Assert.Equal(3UL, (await b.ReceiveAsync<SendAckFrame>()).Seq);

        var id = await b.SendTextAsync("general", "4", "k4");
        var limited = await b.ReceiveAsync<ErrorFrame>();
        Assert.Equal((id, ErrorCode.RateLimited), (limited.RequestId, limited.Code));
        Assert.InRange(limited.RetryAfterMs, 1u, 1000u);

        // A millisecond before the advertised wait is over the send is still refused...
        h.Clock.Advance(TimeSpan.FromMilliseconds(limited.RetryAfterMs - 1));
        await b.SendTextAsync("general", "4", "k4");
        Assert.Equal(ErrorCode.RateLimited, (await b.ReceiveAsync<ErrorFrame>()).Code);

        // ...and once it is over the same send goes through, exactly once.
        h.Clock.Advance(TimeSpan.FromMilliseconds(1));
        await b.SendTextAsync("general", "4", "k4");
        var ack = await b.ReceiveAsync<SendAckFrame>();
        Assert.Equal((4UL, false), (ack.Seq, ack.Duplicate));
    }

    [Fact]
    public async Task Typing_reaches_other_live_subscribers_only_and_floods_are_dropped_silently()
    {
        await using var gw = await TestGateway.StartAsync(null, "--Gateway:TypingPerSecond=1", "--Gateway:TypingBurst=2");
        await gw.CreateChatAsync("general", "alice", "bob");
        await using var alice = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
        await using var bob = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("bob"));
        foreach (var c in new[] { alice, bob })
        {
            await c.SubscribeAsync(new ChatCursor("general", 0));
            await c.ReceiveAsync<SubscribedFrame>();
            await c.ReceiveAsync<CaughtUpFrame>();
        }

        // Five typing frames against a burst of two: bob sees two notices, alice gets no errors.
        for (var i = 0; i < 5; i++)
        {
            await alice.SendFrameAsync(w => ClientFrameWriter.WriteTyping(w, 100, "general"));
        }

        // Alice's next frames are her own message and its ack (either order): no typing echo, no errors.
        await alice.SendTextAsync("general", "done typing");
        var two = new[] { await alice.ReceiveAsync(), await alice.ReceiveAsync() };
        Assert.Single(two.OfType<SendAckFrame>());
        Assert.Equal(1UL, Assert.Single(two.OfType<MessageFrame>()).Message.Seq);

        Assert.Equal(new UserTypingFrame("general", "alice"), await bob.ReceiveAsync<UserTypingFrame>());
        Assert.Equal(new UserTypingFrame("general", "alice"), await bob.ReceiveAsync<UserTypingFrame>());
        Assert.Equal(1UL, (await bob.ReceiveAsync<MessageFrame>()).Message.Seq);

        // A non-member's typing is refused.
        await using var mallory = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("mallory"));
        await mallory.SendFrameAsync(w => ClientFrameWriter.WriteTyping(w, 7, "general"));
        var error = await mallory.ReceiveAsync<ErrorFrame>();
        Assert.Equal((7u, ErrorCode.NotMember), (error.RequestId, error.Code));
    }

    [Fact]
    public async Task Token_expiry_warns_then_closes_4001()
    {
        await using var gw = await TestGateway.StartAsync(null, "--Gateway:TokenGraceSeconds=1");
        await using var client = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice", lifetime: TimeSpan.FromSeconds(3)));
        var expiring = await client.ReceiveAsync<TokenExpiringFrame>(TimeSpan.FromSeconds(10));
        Assert.Equal(client.Hello.TokenExpiresAt, expiring.ExpiresAt);
        Assert.Equal(expiring.ExpiresAt + 1000, expiring.CloseAt);
        var status = await client.ReceiveCloseAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(CloseCodes.TokenExpired, (ushort)status!.Value);
    }

    [Fact]
    public async Task Token_refreshed_in_band_keeps_the_connection()
    {
        // In process on a manual clock: the token timer fires (inline) when the clock passes its deadline, no sleep.
        await using var h = SessionHarness.Create(new GatewayOptions { TokenGraceSeconds = 3 });
        await h.CreateChatAsync("general", "alice");
        var client = await h.ConnectAsync("alice", TimeSpan.FromSeconds(3));

        // TokenExpiring is due a third of the lifetime before expiry (less than TokenRefreshLeadSeconds).
        h.Clock.Advance(TimeSpan.FromSeconds(2) + TimeSpan.FromMilliseconds(200));
        var expiring = await client.ReceiveAsync<TokenExpiringFrame>();
        Assert.Equal(expiring.ExpiresAt + 3000, expiring.CloseAt);

        // Another user's token is refused and changes nothing.
        await client.SendFrameAsync((w, id) => ClientFrameWriter.WriteRefreshToken(w, id, h.Token("bob", TimeSpan.FromHours(1))));
        var refused = await client.ReceiveAsync<ErrorFrame>();
        Assert.Equal(ErrorCode.Unauthenticated, refused.Code);

        var fresh = h.Token("alice", TimeSpan.FromHours(1));
        var refreshId = await client.SendFrameAsync((w, id) => ClientFrameWriter.WriteRefreshToken(w, id, fresh));
        var refreshed = await client.ReceiveAsync<TokenRefreshedFrame>();
        Assert.Equal(refreshId, refreshed.RequestId);
        Assert.True(refreshed.ExpiresAt > expiring.ExpiresAt + 3_000_000);

        // A second past the old close time the connection still works: the next frame is the send's ack, not a 4001 close.
        h.Clock.Advance(TimeSpan.FromMilliseconds(expiring.CloseAt + 1000 - h.Clock.GetUtcNow().ToUnixTimeMilliseconds()));
        await client.SendTextAsync("general", "still connected", "k1");
        Assert.Equal(1UL, (await client.ReceiveAsync<SendAckFrame>()).Seq);
    }

    [Fact]
    public async Task Stalled_reader_is_closed_4002_others_keep_receiving_and_it_resumes_without_loss()
    {
        // 300 × 30 KB = 9 MB for the stalled reader: more than the kernel can buffer on loopback (4 MB send
        // buffer at most, net.ipv4.tcp_wmem) plus Kestrel's 64 KB output pipe plus the 1 MB queue bound, so the gateway's
        // own bound must act. The bound leaves the readers that keep up ~33 messages of slack: with 4 (a 128 KB bound)
        // a reader descheduled for a few milliseconds on a loaded 2-core machine was itself cut off as slow.
        const int readers = 50, messages = 300;
        var content = new string('x', 30_000);
        await using var gw = await TestGateway.StartAsync(null, "--Gateway:MaxOutboundFrames=64", "--Gateway:MaxOutboundBytes=1048576",
            "--Gateway:SendsPerSecond=100000", "--Gateway:SendBurst=100000", "--Gateway:HandshakesPerSecondPerIp=0");
        var members = Enumerable.Range(0, readers).Select(i => $"r{i}").Append("alice").Append("stalled").ToArray();
        await gw.CreateChatAsync("busy", members);

        // The stalled reader: a raw socket with a tiny receive buffer that subscribes and then never reads again.
        using var stalled = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        await stalled.ConnectAsync(IPEndPoint.Parse(gw.WebSocketUri.Authority));
        var upgrade = RawWebSocketClient.BuildUpgradeRequest(gw.WebSocketUri.AbsolutePath, ProtocolConstants.SubProtocol,
            extraHeaders: $"Authorization: Bearer {gw.Token("stalled")}");
        var subscribe = new System.Buffers.ArrayBufferWriter<byte>();
        ClientFrameWriter.WriteSubscribe(subscribe, 1, [new ChatCursor("busy", 0)]);
        await stalled.SendAsync(Encoding.ASCII.GetBytes(upgrade).Concat(RawWebSocketClient.BuildFrame(RawWebSocketClient.OpBinary, subscribe.WrittenSpan)).ToArray());

        var clients = new List<WsClient>();
        for (var i = 0; i < readers; i++)
        {
            var c = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token($"r{i}"));
            await c.SubscribeAsync(new ChatCursor("busy", 0));
            await c.ReceiveAsync<SubscribedFrame>();
            await c.ReceiveAsync<CaughtUpFrame>();
            clients.Add(c);
        }

        // A reader that is itself cut off (descheduled for longer than its slack on a loaded machine) resumes from its
        // cursor as every client does; what it must get is every message exactly once and in order, not an unbroken
        // connection. The stalled reader below is the one that must be cut off.
        var readerResumes = 0;
        var receiving = clients.Select((first, index) => Task.Run(async () =>
        {
            var c = first;
            var seqs = new List<ulong>();
            while (seqs.Count < messages)
            {
                var frame = await c.ReceiveAsync(TimeSpan.FromSeconds(30));
                if (frame is MessageFrame m)
                {
                    seqs.Add(m.Message.Seq);
                }
                else if (frame is null)
                {
                    Assert.Equal((System.Net.WebSockets.WebSocketCloseStatus)CloseCodes.SlowConsumer, c.CloseStatus);
                    Interlocked.Increment(ref readerResumes);
                    await c.DisposeAsync();
                    c = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token($"r{index}"));
                    clients[index] = c;
                    await c.SubscribeAsync(new ChatCursor("busy", seqs.Count == 0 ? 0 : seqs[^1]));
                }
            }

            return seqs;
        })).ToList();

        await using (var alice = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice")))
        {
            for (var i = 0; i < messages; i++)
            {
                await alice.SendTextAsync("busy", content, $"m{i}");
                await alice.ReceiveAsync<SendAckFrame>();
            }
        }

        // Everyone who reads got everything, in order.
        foreach (var seqs in await Task.WhenAll(receiving).WaitAsync(TimeSpan.FromSeconds(60)))
        {
            Assert.Equal(Enumerable.Range(1, messages).Select(i => (ulong)i), seqs);
        }

        // The stalled one was cut off: once it reads again it finds a 4002 close after what was buffered,
        // and the server dropped its connection.
        var buffer = new byte[1 << 20];
        var received = new List<byte>();
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            while (true)
            {
                var n = await stalled.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                if (n == 0)
                {
                    break;
                }

                received.AddRange(buffer.AsSpan(0, n).ToArray());
            }
        }

        output.WriteLine($"readers that were cut off and resumed: {readerResumes}");
        var (lastSeq, closeCode) = ScanFrames(received.ToArray());
        Assert.Equal(CloseCodes.SlowConsumer, closeCode);
        Assert.True(lastSeq < messages, $"the stalled reader was sent everything ({lastSeq}); the bound did not apply");

        // It resumes from its cursor and loses nothing.
        await using var resumed = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("stalled"));
        await resumed.SubscribeAsync(new ChatCursor("busy", lastSeq));
        await resumed.ReceiveAsync<SubscribedFrame>();
        var rest = new List<ulong>();
        while (rest.Count < messages - (int)lastSeq)
        {
            rest.Add(Assert.IsType<MessageFrame>(await resumed.ReceiveAsync()).Message.Seq);
        }

        Assert.Equal(Enumerable.Range((int)lastSeq + 1, messages - (int)lastSeq).Select(i => (ulong)i), rest);
        foreach (var c in clients)
        {
            await c.DisposeAsync();
        }
    }

    /// <summary>Walks server frames (after the HTTP response): the last Message seq and the close code.</summary>
    private static (ulong LastSeq, ushort? CloseCode) ScanFrames(byte[] data)
    {
        var start = data.AsSpan().IndexOf("\r\n\r\n"u8) + 4;
        ulong last = 0;
        ushort? close = null;
        for (var i = start; i + 2 <= data.Length;)
        {
            var opcode = data[i] & 0x0F;
            long len = data[i + 1] & 0x7F;
            var header = 2;
            if (len == 126)
            {
                len = (data[i + 2] << 8) | data[i + 3];
                header = 4;
            }
            else if (len == 127)
            {
                len = (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(data.AsSpan(i + 2));
                header = 10;
            }

            if (i + header + len > data.Length)
            {
                break;
            }

            var payload = new System.Buffers.ReadOnlySequence<byte>(data, i + header, (int)len);
            if (opcode == 2 && ServerFrame.Decode(payload) is MessageFrame m)
            {
                last = m.Message.Seq;
            }
            else if (opcode == 8 && len >= 2)
            {
                close = (ushort)((data[i + header] << 8) | data[i + header + 1]);
            }

            i += header + (int)len;
        }

        return (last, close);
    }

    [Fact]
    public async Task Slow_handshake_is_dropped_and_the_gateway_keeps_serving()
    {
        await using var gw = await TestGateway.StartAsync(null, "--Gateway:HandshakeTimeoutSeconds=1");
        await using var slowloris = await RawWebSocketClient.ConnectAsync(IPEndPoint.Parse(gw.WebSocketUri.Authority));

        // Half a request, then nothing: the server hangs up after the handshake timeout.
        await slowloris.SendRawAsync(Encoding.ASCII.GetBytes("GET /v1/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"));
        Assert.True(await slowloris.ReadUntilEofAsync(TimeSpan.FromSeconds(15)), "the stalled handshake was not dropped");

        await using var fine = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
        Assert.Equal("alice", fine.Hello.UserId);
    }
}
