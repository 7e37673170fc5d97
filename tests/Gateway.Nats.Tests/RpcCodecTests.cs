using System.Buffers;
using System.Text;
using Gateway.Domain;

namespace Gateway.Nats.Tests;

/// <summary>The send request's codec on the writer side: the decoded send owns its content as a slice of the request, so
/// the writer does not copy it again (the gateway session's copy out of its pipe is the one copy of a send).</summary>
public sealed class RpcCodecTests
{
    [Fact]
    public void A_decoded_send_round_trips_and_its_content_is_a_slice_of_the_request()
    {
        var sent = new SendMessage("t1", "general", "alice", "k1", "text/plain", Encoding.UTF8.GetBytes("hello"), 1_732_000_000_000, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        var request = RpcCodec.EncodeSend(sent);

        var decoded = RpcCodec.DecodeSend(new ReadOnlySequence<byte>(request));

        Assert.Equal(sent with { Content = decoded.Content }, decoded);
        Assert.Equal("hello", Encoding.UTF8.GetString(decoded.Content.Span));
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(decoded.Content, out var segment));
        Assert.Same(request, segment.Array);
    }

    [Fact]
    public void A_send_split_across_segments_decodes_to_the_same_content()
    {
        var sent = new SendMessage("t1", "general", "alice", "k1", "text/plain", Encoding.UTF8.GetBytes("hello world"), null);
        var request = RpcCodec.EncodeSend(sent);
        var first = new Segment(request.AsMemory(0, request.Length - 4));
        var last = first.Append(request.AsMemory(request.Length - 4));

        var decoded = RpcCodec.DecodeSend(new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length));

        Assert.Equal("hello world", Encoding.UTF8.GetString(decoded.Content.Span));
        Assert.Null(decoded.ExpiresAt);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory) => Memory = memory;

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory) { RunningIndex = RunningIndex + Memory.Length };
            Next = next;
            return next;
        }
    }
}
