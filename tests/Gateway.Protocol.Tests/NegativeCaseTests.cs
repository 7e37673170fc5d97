using System.Buffers;
using MessagePack;

namespace Gateway.Protocol.Tests;

/// <summary>Specific malformed and invalid frames and the status or exception each must produce.</summary>
public class NegativeCaseTests
{
    [Theory]
    [InlineData("")]                   // nothing
    [InlineData("c0")]                 // nil
    [InlineData("03")]                 // a bare integer
    [InlineData("a473656e64")]         // "send"
    [InlineData("c403010203")]         // bin
    [InlineData("810301")]             // map {3: 1}
    [InlineData("90")]                 // [] (no tag)
    [InlineData("92c001")]             // [nil, 1]
    [InlineData("92ff01")]             // [-1, 1]: the tag is not a uint
    [InlineData("92cb3ff000000000000001")] // [1.0, 1]: a float is not an integer tag
    [InlineData("dc0005")]             // array16 header with 5 elements and none present
    public void Not_an_array_with_an_integer_tag_is_malformed(string hex)
    {
        Assert.Equal(ReadStatus.Malformed, Read(hex, out _));
        Assert.Throws<FormatException>(() => ServerFrame.Decode(Seq(hex)));
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(5u)]
    [InlineData(31u)]
    [InlineData(32u)]   // server tags are unknown to the server's reader
    [InlineData(40u)]
    [InlineData(255u)]
    [InlineData(257u)]  // 257 mod 256 = 1: must not alias Subscribe
    [InlineData(259u)]  // 259 mod 256 = 3: must not alias Send
    [InlineData(65_539u)]
    [InlineData(uint.MaxValue)]
    public void Unknown_tag_is_UnknownType_with_the_request_id_read(uint tag)
    {
        // [tag, 4242, "c", 0, 50] would be a valid History/Send-shaped body for an aliased tag.
        var bytes = Frame((ref w) =>
        {
            w.WriteArrayHeader(5);
            w.Write(tag);
            w.Write(4242u);
            w.Write("c");
            w.Write(0u);
            w.Write(50u);
        });
        Assert.Equal(ReadStatus.UnknownType, ClientFrameReader.TryRead(new ReadOnlySequence<byte>(bytes), out var frame));
        Assert.Equal(4242u, frame.RequestId);
        if (tag > byte.MaxValue)
        {
            Assert.Equal((FrameType)0, frame.Type);
        }
    }

    [Fact]
    public void Unknown_tag_without_a_request_id_is_UnknownType_with_request_id_0()
    {
        Assert.Equal(ReadStatus.UnknownType, Read("9109", out var frame));
        Assert.Equal(0u, frame.RequestId);
    }

    [Theory]
    [InlineData(289u)]      // 289 mod 256 = 33: must not alias Subscribed
    [InlineData(293u)]      // 293 mod 256 = 37: must not alias Message
    [InlineData(1u)]        // client tags are unknown to a client
    [InlineData(41u)]
    public void Server_decoder_ignores_unknown_tags(uint tag)
    {
        // Shaped like a valid Unsubscribed [34, 7] body so that an aliasing bug would decode it.
        var bytes = Frame((ref w) =>
        {
            w.WriteArrayHeader(2);
            w.Write(tag);
            w.Write(7u);
        });
        Assert.Null(ServerFrame.Decode(new ReadOnlySequence<byte>(bytes)));
    }

    [Fact]
    public void Wrong_field_types_are_Invalid_and_keep_the_request_id()
    {
        // Replace each field after requestId of a valid frame with a value of the wrong type.
        var send = new object?[] { "c", "m-1", "text/plain", new byte[] { 1 }, null };
        var history = new object?[] { "c", 0u, 50u };
        foreach (var (tag, fields) in new[] { (3u, send), (4u, history) })
        {
            for (var i = 0; i < fields.Length; i++)
            {
                foreach (var wrong in new object?[] { true, "s", new byte[] { 1 }, 1.5, -1, new object?[] { 1 } })
                {
                    if (SameKind(fields[i], wrong) || (tag == 3 && i == 4 && wrong is -1))
                    {
                        continue; // not wrong for this position (expiresAt is an int64: -1 is allowed)
                    }

                    var mutated = (object?[])fields.Clone();
                    mutated[i] = wrong;
                    var bytes = Frame((ref w) =>
                    {
                        w.WriteArrayHeader(2 + mutated.Length);
                        w.Write(tag);
                        w.Write(77u);
                        foreach (var f in mutated)
                        {
                            WriteValue(ref w, f);
                        }
                    });
                    var status = ClientFrameReader.TryRead(new ReadOnlySequence<byte>(bytes), out var frame);
                    Assert.True(status == ReadStatus.Invalid, $"tag {tag} field {i} = {wrong}: {status}");
                    Assert.Equal(77u, frame.RequestId);
                    Assert.Equal((FrameType)tag, frame.Type);
                }
            }
        }
    }

    [Theory]
    [InlineData("9301ff90")]           // requestId -1
    [InlineData("9301c090")]           // requestId nil
    [InlineData("9301cf000000010000000090")] // requestId 2^32 does not fit a uint32
    [InlineData("9301a17890")]         // requestId "x"
    public void Bad_request_id_on_a_known_tag_is_Invalid(string hex)
    {
        Assert.Equal(ReadStatus.Invalid, Read(hex, out var frame));
        Assert.Equal(0u, frame.RequestId);
    }

    [Theory]
    [InlineData("93010591")]                       // Subscribe list promises one entry, none follows
    [InlineData("9301059192a163ff")]               // afterSeq -1
    [InlineData("9301059192a163d0ff")]             // afterSeq -1 as int8
    [InlineData("9301059192a163d3ffffffffffffffff")] // afterSeq -1 as int64
    [InlineData("9301059191a163")]                 // entry without afterSeq
    [InlineData("9301059192c000")]                 // entry with nil chatId
    [InlineData("9301059192a163c0")]               // entry with nil afterSeq
    [InlineData("93010581a16300")]                 // list is a map
    [InlineData("93020591c0")]                     // Unsubscribe entry nil
    [InlineData("9302059192a16300")]               // Unsubscribe entry is an array (Subscribe shape)
    [InlineData("920105")]                         // Subscribe without the list
    [InlineData("950405a163ff32")]                 // History beforeSeq -1
    [InlineData("950405a16300cf0000000100000000")] // History limit 2^32 does not fit a uint32
    [InlineData("970305a163a16da174c401ffcf8000000000000000")] // Send expiresAt 2^63 does not fit an int64
    public void Out_of_range_or_missing_fields_are_Invalid(string hex)
    {
        Assert.Equal(ReadStatus.Invalid, Read(hex, out var frame));
        Assert.Equal(5u, frame.RequestId);
    }

    [Theory]
    [InlineData("950417a767656e6572616c003201")]   // History + 0x01
    [InlineData("93020a90c0")]                     // Unsubscribe [] + nil
    [InlineData("93020a9093020a90")]               // two frames in one message
    public void Trailing_bytes_after_the_array_are_Malformed(string hex)
    {
        Assert.Equal(ReadStatus.Malformed, Read(hex, out _));
    }

    [Theory]
    [InlineData("92220a", true)]        // Unsubscribed [34, 10]: valid
    [InlineData("92220ac0", false)]     // + trailing nil after the array
    [InlineData("91220a", false)]       // [34] then a stray 10: the array is short
    [InlineData("9326a163", false)]     // CaughtUp [38, "c"]: seq missing
    [InlineData("9321019191a1630005", false)] // Subscribed result ["c"], then 0 and 5 outside it: not code/headSeq
    [InlineData("952701a163919101a16da17300a174c400c0c2", false)] // HistoryPage entry [1], body outside it
    [InlineData("93210191930a0000", false)] // Subscribed result with an integer chatId
    public void Server_decoder_checks_arrays_and_types(string hex, bool valid)
    {
        if (valid)
        {
            Assert.NotNull(ServerFrame.Decode(Seq(hex)));
        }
        else
        {
            Assert.Throws<FormatException>(() => ServerFrame.Decode(Seq(hex)));
        }
    }

    [Fact]
    public void Server_decoder_passes_unknown_error_codes_through()
    {
        // Error [36, 1, 256, ""]: codes are only ever added, so a client must accept one it does not know.
        Assert.Equal(new ErrorFrame(1, (ErrorCode)256, ""), ServerFrame.Decode(Seq("942401cd0100a0")));
    }

    [Theory]
    [InlineData("9326c000")]           // CaughtUp with nil chatId
    [InlineData("9925a1630101a1610000a174c0c0")] // Message with nil content
    [InlineData("9424c00100a0")]       // Error with nil requestId
    [InlineData("942401ce00010000a0")] // Error code 65536 does not fit a ushort
    public void Server_decoder_rejects_nil_and_out_of_range_fields(string hex)
    {
        Assert.Throws<FormatException>(() => ServerFrame.Decode(Seq(hex)));
    }

    private static ReadStatus Read(string hex, out ClientFrame frame) => ClientFrameReader.TryRead(Seq(hex), out frame);

    private static ReadOnlySequence<byte> Seq(string hex) => new(Convert.FromHexString(hex));

    private delegate void WriteFrame(ref MessagePackWriter writer);

    private static byte[] Frame(WriteFrame write)
    {
        var output = new ArrayBufferWriter<byte>();
        var w = new MessagePackWriter(output);
        write(ref w);
        w.Flush();
        return output.WrittenSpan.ToArray();
    }

    private static bool SameKind(object? a, object? b) => a?.GetType() == b?.GetType() ||
        (a is uint && b is int) || (a is null && b is null);

    private static void WriteValue(ref MessagePackWriter w, object? value)
    {
        switch (value)
        {
            case null:
                w.WriteNil();
                break;
            case bool b:
                w.Write(b);
                break;
            case string s:
                w.Write(s);
                break;
            case byte[] bytes:
                w.Write(bytes);
                break;
            case double d:
                w.Write(d);
                break;
            case int i:
                w.Write(i);
                break;
            case uint u:
                w.Write(u);
                break;
            case object?[] array:
                w.WriteArrayHeader(array.Length);
                foreach (var item in array)
                {
                    WriteValue(ref w, item);
                }

                break;
            default:
                throw new ArgumentException("Unsupported value " + value);
        }
    }
}
