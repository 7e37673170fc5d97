using Xunit;
using C = Gateway.TestUtilities.RawWebSocketClient;

namespace Gateway.WebSockets.Tests;

public sealed class SharedServerFixture : IAsyncLifetime
{
    public const int MaxMessageBytes = 100_000;

    public WsTestServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await WsTestServer.StartAsync(new WebSocketOptions
    {
        MaxMessageBytes = MaxMessageBytes,
        KeepAliveInterval = TimeSpan.Zero,
        CloseTimeout = TimeSpan.FromSeconds(2),
    });

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>RFC 6455 framing over a real socket against real Kestrel, driven by the raw client.</summary>
public class ProtocolTests(SharedServerFixture fixture) : IClassFixture<SharedServerFixture>
{
    private Task<C> ConnectAsync() => C.ConnectAndUpgradeAsync(fixture.Server.EndPoint);

    private static byte[] Payload(int length, int seed = 1)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    private static async Task AssertEchoAsync(C client, byte[] payload)
    {
        var echo = await client.ReadFrameAsync();
        Assert.Equal(C.OpBinary, echo.Opcode);
        Assert.True(echo.Fin);
        Assert.False(echo.Masked);
        Assert.Equal(payload, echo.Payload);
    }

    private async Task AssertFailsAsync(ushort expectedCode, params byte[][] writes)
    {
        await using var client = await ConnectAsync();
        foreach (var write in writes)
        {
            await client.SendRawAsync(write);
        }

        var close = await client.ReadCloseFrameAsync();
        Assert.Equal(expectedCode, close.CloseCode);
        Assert.False(close.Masked);
        Assert.True(await client.ReadUntilEofAsync(), "the server should close the TCP connection after failing it");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(125)]   // largest 7-bit length
    [InlineData(126)]   // smallest 16-bit length
    [InlineData(65535)] // largest 16-bit length
    [InlineData(65536)] // smallest 64-bit length
    [InlineData(SharedServerFixture.MaxMessageBytes)]
    public async Task Echoes_every_length_encoding(int length)
    {
        await using var client = await ConnectAsync();
        var payload = Payload(length, length);
        await client.SendFrameAsync(C.OpBinary, payload);
        await AssertEchoAsync(client, payload);
    }

    [Fact]
    public async Task Accepts_non_minimal_length_encodings()
    {
        await using var client = await ConnectAsync();
        var payload = Payload(5);
        await client.SendRawAsync(C.BuildFrame(C.OpBinary, payload, lengthBytes: 2));
        await AssertEchoAsync(client, payload);
        await client.SendRawAsync(C.BuildFrame(C.OpBinary, payload, lengthBytes: 8));
        await AssertEchoAsync(client, payload);
    }

    [Fact]
    public async Task Frame_sent_one_byte_per_write_is_parsed()
    {
        await using var client = await ConnectAsync();
        var payload = Payload(300);
        await client.SendBytewiseAsync(C.BuildFrame(C.OpBinary, payload));
        await AssertEchoAsync(client, payload);
    }

    [Fact]
    public async Task Many_frames_in_one_write_are_all_handled_in_order()
    {
        await using var client = await ConnectAsync();
        var payloads = Enumerable.Range(0, 20).Select(i => Payload(i * 37, i)).ToArray();
        await client.SendRawAsync(payloads.SelectMany(p => C.BuildFrame(C.OpBinary, p)).ToArray());
        foreach (var payload in payloads)
        {
            await AssertEchoAsync(client, payload);
        }
    }

    [Fact]
    public async Task Fragments_are_joined_into_one_message()
    {
        await using var client = await ConnectAsync();
        var payload = Payload(70_000);
        await client.SendFrameAsync(C.OpBinary, payload.AsSpan(0, 10), fin: false);
        await client.SendFrameAsync(C.OpContinuation, [], fin: false);
        await client.SendFrameAsync(C.OpContinuation, payload.AsSpan(10, 40_000), fin: false);
        await client.SendFrameAsync(C.OpContinuation, payload.AsSpan(40_010), fin: true);
        await AssertEchoAsync(client, payload);

        // And the connection is back to normal afterwards.
        var next = Payload(3);
        await client.SendFrameAsync(C.OpBinary, next);
        await AssertEchoAsync(client, next);
    }

    [Fact]
    public async Task Ping_between_fragments_is_answered_before_the_message_completes()
    {
        await using var client = await ConnectAsync();
        await client.SendFrameAsync(C.OpBinary, "hel"u8, fin: false);
        await client.SendFrameAsync(C.OpPing, "mid"u8);
        var pong = await client.ReadFrameAsync();
        Assert.Equal(C.OpPong, pong.Opcode);
        Assert.Equal("mid"u8.ToArray(), pong.Payload);

        await client.SendFrameAsync(C.OpContinuation, "lo"u8, fin: true);
        await AssertEchoAsync(client, "hello"u8.ToArray());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(125)]
    public async Task Ping_is_answered_with_the_same_payload(int length)
    {
        await using var client = await ConnectAsync();
        var payload = Payload(length);
        await client.SendFrameAsync(C.OpPing, payload);
        var pong = await client.ReadFrameAsync();
        Assert.Equal(C.OpPong, pong.Opcode);
        Assert.True(pong.Fin);
        Assert.Equal(payload, pong.Payload);
    }

    [Fact]
    public async Task Two_pings_in_one_write_end_with_a_pong_for_the_second()
    {
        // Over a real socket: A's pong may or may not be written before B is read (§5.5.3 allows either one pong or
        // two), but the last pong must answer B. Deterministic coverage of the "B arrives while A's pong waits" case,
        // where the old code sent A's payload only, is in PingFloodTests.
        await using var client = await ConnectAsync();
        byte[] marker = Payload(4, seed: 7);
        await client.SendRawAsync((byte[])[.. C.BuildFrame(C.OpPing, "ping A"u8), .. C.BuildFrame(C.OpPing, "ping B"u8),
            .. C.BuildFrame(C.OpBinary, marker)]);

        // Frames come back in the order they were queued; the echo of the marker was queued after both pings' answer.
        var pongs = new List<byte[]>();
        while (true)
        {
            var frame = await client.ReadFrameAsync(TimeSpan.FromSeconds(30));
            if (frame.Opcode == C.OpBinary)
            {
                Assert.Equal(marker, frame.Payload);
                break;
            }

            Assert.Equal(C.OpPong, frame.Opcode);
            pongs.Add(frame.Payload);
        }

        Assert.InRange(pongs.Count, 1, 2);
        Assert.Equal("ping B"u8.ToArray(), pongs[^1]);
    }

    [Fact]
    public async Task Pong_is_ignored()
    {
        await using var client = await ConnectAsync();
        await client.SendFrameAsync(C.OpPong, "unsolicited"u8);
        var payload = Payload(4);
        await client.SendFrameAsync(C.OpBinary, payload);
        await AssertEchoAsync(client, payload); // the echo is the first thing back: no answer to the pong
    }

    [Theory]
    [InlineData(1000)]
    [InlineData(1001)]
    [InlineData(1014)]
    [InlineData(3000)]
    [InlineData(4999)]
    public async Task Peer_close_is_echoed_then_the_connection_ends(int code)
    {
        await using var client = await ConnectAsync();
        await client.SendFrameAsync(C.OpClose, C.ClosePayload((ushort)code, "bye ✓"u8));
        var close = await client.ReadFrameAsync();
        Assert.Equal(C.OpClose, close.Opcode);
        Assert.Equal((ushort)code, close.CloseCode);
        Assert.Equal("bye ✓", close.CloseReason);
        Assert.True(await client.ReadUntilEofAsync());
    }

    [Fact]
    public async Task Empty_close_is_echoed_empty()
    {
        await using var client = await ConnectAsync();
        await client.SendFrameAsync(C.OpClose, []);
        var close = await client.ReadFrameAsync();
        Assert.Equal(C.OpClose, close.Opcode);
        Assert.Empty(close.Payload);
        Assert.True(await client.ReadUntilEofAsync());
    }

    public static TheoryData<string> Violations() =>
    [
        "unmasked", "rsv1", "rsv2", "rsv3", "op3", "op4", "op5", "op6", "op7", "op11", "op12", "op13", "op14", "op15",
        "ping126", "pingNoFin", "closeNoFin", "lonelyContinuation", "binaryInsideFragmented", "length64TopBit",
        "close1", "close999", "close1004", "close1005", "close1006", "close1015", "close1016", "close2999", "close5000",
        "close65535",
    ];

    [Theory]
    [MemberData(nameof(Violations))]
    public Task Protocol_violations_close_with_1002(string violation)
    {
        byte[] ok = [1, 2, 3];
        byte[][] writes = violation switch
        {
            "unmasked" => [C.BuildFrame(C.OpBinary, ok, mask: false)],
            "rsv1" => [C.BuildFrame(C.OpBinary, ok, rsv: 4)],
            "rsv2" => [C.BuildFrame(C.OpBinary, ok, rsv: 2)],
            "rsv3" => [C.BuildFrame(C.OpBinary, ok, rsv: 1)],
            _ when violation.StartsWith("op", StringComparison.Ordinal) =>
                [C.BuildFrame(byte.Parse(violation[2..], System.Globalization.CultureInfo.InvariantCulture), ok)],
            "ping126" => [C.BuildFrame(C.OpPing, new byte[126])],
            "pingNoFin" => [C.BuildFrame(C.OpPing, ok, fin: false)],
            "closeNoFin" => [C.BuildFrame(C.OpClose, C.ClosePayload(1000), fin: false)],
            "lonelyContinuation" => [C.BuildFrame(C.OpContinuation, ok)],
            "binaryInsideFragmented" => [C.BuildFrame(C.OpBinary, ok, fin: false), C.BuildFrame(C.OpBinary, ok)],
            "length64TopBit" => [C.BuildFrame(C.OpBinary, [], lengthBytes: 8, declaredLength: 0x8000_0000_0000_0001)],
            "close1" => [C.BuildFrame(C.OpClose, [0x03])],
            _ when violation.StartsWith("close", StringComparison.Ordinal) =>
                [C.BuildFrame(C.OpClose, C.ClosePayload(ushort.Parse(violation[5..], System.Globalization.CultureInfo.InvariantCulture)))],
            _ => throw new ArgumentOutOfRangeException(nameof(violation)),
        };
        return AssertFailsAsync(1002, writes);
    }

    [Fact]
    public Task Close_reason_that_is_not_utf8_closes_with_1007() =>
        AssertFailsAsync(1007, C.BuildFrame(C.OpClose, C.ClosePayload(1000, [0x61, 0xC3, 0x28])));

    [Fact]
    public Task Text_frame_closes_with_1003() =>
        AssertFailsAsync(1003, C.BuildFrame(C.OpText, "hi"u8));

    [Fact]
    public Task Oversize_frame_is_refused_from_its_header_alone() =>
        // Only the header is sent: the server must decide before any payload arrives.
        AssertFailsAsync(1009, C.BuildFrame(C.OpBinary, [], declaredLength: SharedServerFixture.MaxMessageBytes + 1));

    [Fact]
    public Task Fragments_over_the_limit_together_close_with_1009() =>
        AssertFailsAsync(1009,
            C.BuildFrame(C.OpBinary, new byte[60_000], fin: false),
            C.BuildFrame(C.OpContinuation, new byte[30_000], fin: false),
            C.BuildFrame(C.OpContinuation, [], fin: true, declaredLength: 10_001));

    [Fact]
    public async Task Frames_after_a_violation_are_not_processed()
    {
        await using var client = await ConnectAsync();
        byte[] both = [.. C.BuildFrame(C.OpBinary, [1], mask: false), .. C.BuildFrame(C.OpBinary, [2])];
        await client.SendRawAsync(both);
        var first = await client.ReadFrameAsync();
        Assert.Equal(C.OpClose, first.Opcode); // no echo of the second frame before (or after) the close
        Assert.Equal((ushort)1002, first.CloseCode);
        Assert.True(await client.ReadUntilEofAsync());
    }

    [Fact]
    public async Task Close_reason_is_readable_text()
    {
        await using var client = await ConnectAsync();
        await client.SendFrameAsync(C.OpText, "x"u8);
        var close = await client.ReadCloseFrameAsync();
        Assert.False(string.IsNullOrWhiteSpace(close.CloseReason));
    }
}
