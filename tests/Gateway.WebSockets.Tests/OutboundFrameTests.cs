using System.Buffers;
using Gateway.TestUtilities;
using Gateway.WebSockets.Internal;
using Xunit;

namespace Gateway.WebSockets.Tests;

[CollectionDefinition(nameof(NonParallel), DisableParallelization = true)]
public sealed class NonParallel;

// Not in parallel with the rest: the allocation check must not see pool growth caused by other tests' threads.
[Collection(nameof(NonParallel))]
public class OutboundFrameTests
{
    [Theory]
    [InlineData(0, 2)]
    [InlineData(125, 2)]
    [InlineData(126, 4)]
    [InlineData(65535, 4)]
    [InlineData(65536, 10)]
    [InlineData(200_000, 10)]
    public void Seal_writes_the_minimal_header_that_our_parser_reads_back(int length, int headerLength)
    {
        var frame = OutboundFrame.Rent(16);
        var payload = new byte[length];
        new Random(length).NextBytes(payload);

        // Write in uneven pieces to exercise growth.
        int written = 0;
        while (written < length)
        {
            int n = Math.Min(1000, length - written);
            payload.AsSpan(written, n).CopyTo(frame.GetSpan(n));
            frame.Advance(n);
            written += n;
        }

        frame.Seal();
        Assert.Equal(length + headerLength, frame.Length);
        var bytes = frame.Memory.ToArray();
        Assert.Equal(FrameHeaderStatus.Complete, FrameHeader.TryParse(new ReadOnlySequence<byte>(bytes), out var header));
        Assert.True(header.Fin);
        Assert.False(header.Masked);
        Assert.Equal(WebSocketOpcode.Binary, header.Opcode);
        Assert.Equal(length, header.PayloadLength);
        Assert.Equal(headerLength, header.HeaderLength);
        Assert.Equal(payload, bytes[headerLength..]);
        frame.Release();
    }

    [Fact]
    public void Reference_counting_and_misuse()
    {
        var frame = OutboundFrame.Rent();
        frame.GetSpan(3)[..3].Fill(7);
        frame.Advance(3);
        Assert.Throws<InvalidOperationException>(() => frame.Memory);
        frame.Seal(WebSocketOpcode.Ping);
        Assert.Throws<InvalidOperationException>(() => frame.GetSpan());
        Assert.Throws<InvalidOperationException>(() => frame.Seal());

        frame.AddRef();
        Assert.Equal(2, frame.RefCount);
        frame.Release();
        Assert.Equal(5, frame.Length);
        frame.Release();
        Assert.Throws<InvalidOperationException>(frame.Release);
    }

    [Fact]
    public void Control_frames_refuse_long_payloads()
    {
        var frame = OutboundFrame.Rent(200);
        frame.Advance(126);
        Assert.Throws<InvalidOperationException>(() => frame.Seal(WebSocketOpcode.Pong));
        frame.Seal(WebSocketOpcode.Binary);
        frame.Release();
    }

    [Fact]
    public void A_rented_frame_starts_clean_even_when_it_comes_from_the_pool()
    {
        for (int i = 0; i < 100; i++)
        {
            var used = OutboundFrame.Rent();
            used.Advance(7);
            used.Seal(WebSocketOpcode.Ping);
            used.Release();

            var frame = OutboundFrame.Rent();
            Assert.Equal(1, frame.RefCount);
            Assert.False(frame.IsSealed);
            Assert.Equal(0, frame.PayloadLength);
            Assert.Equal(0, frame.Length);
            frame.Seal();
            Assert.Equal(WebSocketOpcode.Binary, frame.Opcode);
            Assert.Equal(new byte[] { 0x82, 0 }, frame.Memory.ToArray());
            frame.Release();
        }
    }

    [Fact]
    public void Steady_state_rent_seal_release_allocates_nothing()
    {
        for (int i = 0; i < 100; i++)
        {
            Cycle();
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            Cycle();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);

        static void Cycle()
        {
            var frame = OutboundFrame.Rent(100);
            frame.GetSpan(100)[..100].Clear();
            frame.Advance(100);
            frame.Seal();
            frame.AddRef();
            frame.Release();
            frame.Release();
        }
    }

    [Fact]
    public void Accept_key_matches_rfc_6455_example()
    {
        // RFC 6455 §1.3 sample nonce and its accept value.
        Assert.Equal("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", WebSocketHandshake.ComputeAcceptKey("dGhlIHNhbXBsZSBub25jZQ=="));
        Assert.Equal(RawWebSocketClient.ExpectedAccept(), WebSocketHandshake.ComputeAcceptKey(RawWebSocketClient.DefaultKey));
    }
}
