using System.Runtime.InteropServices;
using System.Text;
using Gateway.Domain;

namespace Gateway.Nats.Tests;

/// <summary>A decoded log event owns its message's content as a slice of the NATS payload: a gateway fans a live event
/// out, and a writer projects it, without copying the content out of the array NATS allocated for it.</summary>
public sealed class WireCodecTests
{
    [Fact]
    public void A_decoded_message_event_round_trips_and_its_content_is_a_slice_of_the_payload()
    {
        var message = new ChatMessage("t1", "general", 7, "0193a1b2c3d4e5f60718293a4b5c6d7e", "alice", 1_732_000_000_000, "text/plain",
            Encoding.UTF8.GetBytes("hello"), null, "k1");
        var payload = WireCodec.EncodeEvent(new LogEvent(LogEventKind.MessageCreated, "e1", 1_732_000_000_000, null, "t1", "general", message, [], 7, 7));

        var decoded = WireCodec.DecodeEvent(Payload.Of(payload)).Message!;

        Assert.Equal(message with { Content = decoded.Content }, decoded);
        Assert.Equal("hello", Encoding.UTF8.GetString(decoded.Content.Span));
        Assert.True(MemoryMarshal.TryGetArray(decoded.Content, out var segment));
        Assert.Same(payload, segment.Array);
    }
}
