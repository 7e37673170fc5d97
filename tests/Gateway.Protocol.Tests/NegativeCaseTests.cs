using System.Buffers;
using System.Text;
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
    [InlineData(7u)]    // the first unassigned client tag (Typing is 5, RefreshToken 6)
    [InlineData(9u)]
    [InlineData(31u)]
    [InlineData(32u)]   // server tags are unknown to the server's reader
    [InlineData(40u)]
    [InlineData(44u)]   // Drain: a server tag
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
    [InlineData("9163" + "00")]             // [99] then 0x00 after the array, without a request id
    [InlineData("926301" + "00")]           // [99, 1] then 0x00
    [InlineData("9363" + "01" + "a163" + "c0")] // [99, 1, "c"] then nil
    [InlineData("9207" + "01" + "9101")]    // [7, 1] then another array
    [InlineData("9163" + "c0")]             // [99] then nil
    public void Unknown_tag_with_bytes_after_the_array_is_malformed(string hex)
    {
        Assert.Equal(ReadStatus.Malformed, Read(hex, out _));
    }

    [Theory]
    [InlineData("9263" + "01")]             // [99, 1]
    [InlineData("9463" + "01" + "a163" + "93010203")] // [99, 1, "c", [1, 2, 3]]
    [InlineData("9363" + "01" + "a5")]      // [99, 1, <str of 5 bytes, cut>]: where the array ends is unknown
    public void Unknown_tag_filling_the_payload_exactly_or_cut_inside_a_field_stays_UnknownType(string hex)
    {
        Assert.Equal(ReadStatus.UnknownType, Read(hex, out _));
    }

    [Theory]
    [InlineData(289u)]      // 289 mod 256 = 33: must not alias Subscribed
    [InlineData(293u)]      // 293 mod 256 = 37: must not alias Message
    [InlineData(1u)]        // client tags are unknown to a client
    [InlineData(5u)]
    [InlineData(45u)]       // the first unassigned server tag (Drain is 44)
    [InlineData(63u)]       // the last server tag
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
        var typing = new object?[] { "c" };
        var refreshToken = new object?[] { "eyJ.e30.sig" };
        foreach (var (tag, fields) in new[] { (3u, send), (4u, history), (5u, typing), (6u, refreshToken) })
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
    [InlineData("920505")]                         // Typing without chatId
    [InlineData("930505c0")]                       // Typing chatId nil
    [InlineData("93050591a163")]                   // Typing chatId is an array
    [InlineData("930505c40163")]                   // Typing chatId is bin
    [InlineData("930505d9")]                       // Typing chatId str8 header without its length byte
    [InlineData("930505a563")]                     // Typing chatId promises 5 bytes, 1 follows
    [InlineData("920605")]                         // RefreshToken without token
    [InlineData("930605c0")]                       // RefreshToken token nil
    [InlineData("9306052a")]                       // RefreshToken token is an integer
    [InlineData("930605c403657941")]               // RefreshToken token is bin
    [InlineData("930605da0100a1")]                 // RefreshToken token str16 of 256 bytes, 1 follows
    public void Out_of_range_or_missing_fields_are_Invalid(string hex)
    {
        Assert.Equal(ReadStatus.Invalid, Read(hex, out var frame));
        Assert.Equal(5u, frame.RequestId);
    }

    [Theory]
    [InlineData("950417a767656e6572616c003201")]   // History + 0x01
    [InlineData("93020a90c0")]                     // Unsubscribe [] + nil
    [InlineData("93020a9093020a90")]               // two frames in one message
    [InlineData("930507a163c0")]                   // Typing + nil
    [InlineData("930607a17493060aa174")]           // two RefreshTokens in one message
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
    [InlineData("932905cf000001941f975900", true)] // TokenRefreshed [41, 5, T0 + 2 h]
    [InlineData("922905", false)]      // TokenRefreshed without expiresAt
    [InlineData("932905a131", false)]  // TokenRefreshed expiresAt as a string
    [InlineData("93290500c0", false)]  // [41, 5, 0] then a stray nil after the array
    [InlineData("932aa163a175", true)] // UserTyping ["c", "u"]
    [InlineData("922aa163", false)]    // UserTyping without userId
    [InlineData("932aa16307", false)]  // UserTyping userId is an integer
    [InlineData("932ac40163a175", false)] // UserTyping chatId is bin
    [InlineData("932b0102", true)]     // TokenExpiring [43, 1, 2]
    [InlineData("922b01", false)]      // TokenExpiring without closeAt
    [InlineData("932b01c3", false)]    // TokenExpiring closeAt is a bool
    [InlineData("932c00a0", true)]     // Drain [44, 0, ""]
    [InlineData("922c00", false)]      // Drain without message
    [InlineData("932ca0a0", false)]    // Drain reconnectAfterMs is a string
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
    [InlineData("95240128a0ff")]     // Error retryAfterMs -1
    [InlineData("95240128a0cf0000000100000000")] // Error retryAfterMs 2^32 does not fit a uint32
    [InlineData("95240128a0a131")]   // Error retryAfterMs "1"
    [InlineData("95240128a0c0")]     // Error retryAfterMs nil: when present it is a number
    [InlineData("93290ac0")]           // TokenRefreshed expiresAt nil
    [InlineData("9329ff00")]           // TokenRefreshed requestId -1
    [InlineData("932ac0a175")]         // UserTyping chatId nil
    [InlineData("932b01cf8000000000000000")] // TokenExpiring closeAt 2^63 does not fit an int64
    [InlineData("932cffa0")]           // Drain reconnectAfterMs -1
    [InlineData("932cce00000001c0")]   // Drain message nil
    public void Server_decoder_rejects_nil_and_out_of_range_fields(string hex)
    {
        Assert.Throws<FormatException>(() => ServerFrame.Decode(Seq(hex)));
    }

    [Theory]
    [InlineData("94240128a0", 0u)]                 // four elements: no hint
    [InlineData("95240128a000", 0u)]               // a fifth element of 0: no hint either
    [InlineData("95240128a0ccfa", 250u)]           // 250 as uint8
    [InlineData("95240128a0ceffffffff", uint.MaxValue)]
    [InlineData("96240128a0cd03e8c3", 1000u)]      // a sixth element (true) is skipped
    public void Server_decoder_reads_the_optional_retry_after(string hex, uint retryAfterMs)
    {
        // Error [36, 1, 40 RateLimited (0x28), "" (0xa0), retryAfterMs?, ...]
        var frame = Assert.IsType<ErrorFrame>(ServerFrame.Decode(Seq(hex)));
        Assert.Equal(ErrorCode.RateLimited, frame.Code);
        Assert.Equal(retryAfterMs, frame.RetryAfterMs);
    }

    [Fact]
    public void Typing_and_RefreshToken_fill_only_their_own_field()
    {
        // Typing carries the chat in ChatId; RefreshToken carries the token in Token. A server that looked in the
        // wrong property would see an empty sequence, so check both sides.
        Assert.Equal(ReadStatus.Ok, Read("930509a3616263", out var typing));
        Assert.Equal((FrameType.Typing, 9u, "abc"), (typing.Type, typing.RequestId, Utf8(typing.ChatId)));
        Assert.True(typing.Token.IsEmpty);

        Assert.Equal(ReadStatus.Ok, Read("93060aa3616263", out var refresh));
        Assert.Equal((FrameType.RefreshToken, 10u, "abc"), (refresh.Type, refresh.RequestId, Utf8(refresh.Token)));
        Assert.True(refresh.ChatId.IsEmpty);
    }

    [Fact]
    public void Empty_strings_in_Typing_and_RefreshToken_are_well_formed()
    {
        // The codec checks shape, not content: an empty chat id is ValidationFailed and an empty token
        // Unauthenticated, both decided by the server, not InvalidFrame.
        Assert.Equal(ReadStatus.Ok, Read("930501a0", out var typing));
        Assert.True(typing.ChatId.IsEmpty);
        Assert.Equal(ReadStatus.Ok, Read("930601a0", out var refresh));
        Assert.True(refresh.Token.IsEmpty);
    }

    private static string Utf8(ReadOnlySequence<byte> bytes) => Encoding.UTF8.GetString(bytes);

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
