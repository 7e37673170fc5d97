using System.Buffers;
using Gateway.TestUtilities;
using Gateway.WebSockets.Internal;
using Xunit;

namespace Gateway.WebSockets.Tests;

public class FrameHeaderTests
{
    private static readonly byte[] Key = [1, 2, 3, 4];

    public static TheoryData<byte, int, bool, bool, int, int> Headers() => new()
    {
        // opcode, payload length, fin, mask, length bytes forced (0 = minimal), rsv
        { RawWebSocketClient.OpBinary, 0, true, true, 0, 0 },
        { RawWebSocketClient.OpBinary, 125, true, true, 0, 0 },
        { RawWebSocketClient.OpBinary, 126, false, true, 0, 0 },
        { RawWebSocketClient.OpContinuation, 65535, true, true, 0, 0 },
        { RawWebSocketClient.OpBinary, 65536, true, true, 0, 0 },
        { RawWebSocketClient.OpBinary, 5, true, true, 8, 0 },
        { RawWebSocketClient.OpBinary, 5, true, false, 2, 0 },
        { RawWebSocketClient.OpPing, 3, true, true, 0, 0 },
        { RawWebSocketClient.OpClose, 2, true, true, 0, 5 },
        { 13, 300, false, false, 0, 7 },
    };

    [Theory]
    [MemberData(nameof(Headers))]
    public void Parses_every_field_at_every_split(byte opcode, int length, bool fin, bool mask, int lengthBytes, int rsv)
    {
        byte[] frame = RawWebSocketClient.BuildFrame(opcode, new byte[length], fin, mask, rsv, Key, lengthBytes);
        int headerLength = frame.Length - length;

        for (int cut = 0; cut <= frame.Length && cut <= 20; cut++)
        {
            AssertHeader(TestSequence.Split(frame, cut));
        }

        // Header bytes one per segment.
        AssertHeader(TestSequence.Create([.. frame.Take(headerLength).Select(b => new[] { b }), frame[headerLength..]]));

        // Every proper prefix of the header is incomplete, in one segment and one byte per segment.
        for (int prefix = 0; prefix < headerLength; prefix++)
        {
            Assert.Equal(FrameHeaderStatus.Incomplete, FrameHeader.TryParse(new ReadOnlySequence<byte>(frame, 0, prefix), out _));
            Assert.Equal(FrameHeaderStatus.Incomplete, FrameHeader.TryParse(TestSequence.Bytewise(frame[..prefix]), out _));
        }

        void AssertHeader(ReadOnlySequence<byte> sequence)
        {
            Assert.Equal(FrameHeaderStatus.Complete, FrameHeader.TryParse(sequence, out var header));
            Assert.Equal(fin, header.Fin);
            Assert.Equal(rsv, header.ReservedBits);
            Assert.Equal(opcode, (byte)header.Opcode);
            Assert.Equal(mask, header.Masked);
            Assert.Equal(length, header.PayloadLength);
            Assert.Equal(headerLength, header.HeaderLength);
            if (mask)
            {
                Assert.Equal(BitConverter.ToUInt32(Key), header.MaskKey);
            }
        }
    }

    [Fact]
    public void Top_bit_of_64_bit_length_is_invalid_at_every_split()
    {
        byte[] frame = RawWebSocketClient.BuildFrame(RawWebSocketClient.OpBinary, [], declaredLength: 0x8000_0000_0000_0000, lengthBytes: 8);
        for (int cut = 0; cut <= frame.Length; cut++)
        {
            Assert.Equal(FrameHeaderStatus.InvalidLength, FrameHeader.TryParse(TestSequence.Split(frame, cut), out _));
        }

        byte[] largest = RawWebSocketClient.BuildFrame(RawWebSocketClient.OpBinary, [], declaredLength: long.MaxValue, lengthBytes: 8);
        Assert.Equal(FrameHeaderStatus.Complete, FrameHeader.TryParse(new ReadOnlySequence<byte>(largest), out var h));
        Assert.Equal(long.MaxValue, h.PayloadLength);
    }

    [Fact]
    public void Random_bytes_never_throw_and_agree_across_segmentations()
    {
        var random = new Random(1234);
        for (int round = 0; round < 20_000; round++)
        {
            var data = new byte[random.Next(0, 20)];
            random.NextBytes(data);
            var single = FrameHeader.TryParse(new ReadOnlySequence<byte>(data), out var a);
            var split = FrameHeader.TryParse(TestSequence.Bytewise(data), out var b);
            Assert.True(Enum.IsDefined(single));
            Assert.Equal(single, split);
            if (single == FrameHeaderStatus.Complete)
            {
                Assert.Equal(a.PayloadLength, b.PayloadLength);
                Assert.Equal(a.HeaderLength, b.HeaderLength);
                Assert.Equal(a.MaskKey, b.MaskKey);
                Assert.InRange(a.HeaderLength, 2, FrameHeader.MaxLength);
                Assert.True(a.HeaderLength <= data.Length);
                Assert.True(a.PayloadLength >= 0);
                Assert.True(Enum.IsDefined(a.Validate()));
            }
        }
    }

    [Theory]
    [InlineData(RawWebSocketClient.OpBinary, 10, true, true, 0, (int)FrameHeaderError.None)]
    [InlineData(RawWebSocketClient.OpBinary, 10, true, false, 0, (int)FrameHeaderError.NotMasked)]
    [InlineData(RawWebSocketClient.OpBinary, 10, true, true, 4, (int)FrameHeaderError.ReservedBits)]
    [InlineData(RawWebSocketClient.OpBinary, 10, true, true, 2, (int)FrameHeaderError.ReservedBits)]
    [InlineData(RawWebSocketClient.OpBinary, 10, true, true, 1, (int)FrameHeaderError.ReservedBits)]
    [InlineData(3, 0, true, true, 0, (int)FrameHeaderError.ReservedOpcode)]
    [InlineData(7, 0, true, true, 0, (int)FrameHeaderError.ReservedOpcode)]
    [InlineData(11, 0, true, true, 0, (int)FrameHeaderError.ReservedOpcode)]
    [InlineData(15, 0, true, true, 0, (int)FrameHeaderError.ReservedOpcode)]
    [InlineData(RawWebSocketClient.OpPing, 125, true, true, 0, (int)FrameHeaderError.None)]
    [InlineData(RawWebSocketClient.OpPing, 126, true, true, 0, (int)FrameHeaderError.ControlTooLong)]
    [InlineData(RawWebSocketClient.OpClose, 2, false, true, 0, (int)FrameHeaderError.ControlFragmented)]
    [InlineData(RawWebSocketClient.OpContinuation, 2, false, true, 0, (int)FrameHeaderError.None)]
    public void Validate_reports_the_rule_broken(byte opcode, int length, bool fin, bool mask, int rsv, int expected)
    {
        byte[] frame = RawWebSocketClient.BuildFrame(opcode, new byte[length], fin, mask, rsv);
        Assert.Equal(FrameHeaderStatus.Complete, FrameHeader.TryParse(new ReadOnlySequence<byte>(frame), out var header));
        Assert.Equal((FrameHeaderError)expected, header.Validate());
    }

    [Theory]
    [InlineData(999, false)]
    [InlineData(1000, true)]
    [InlineData(1003, true)]
    [InlineData(1004, false)]
    [InlineData(1005, false)]
    [InlineData(1006, false)]
    [InlineData(1007, true)]
    [InlineData(1014, true)]
    [InlineData(1015, false)]
    [InlineData(1016, false)]
    [InlineData(2999, false)]
    [InlineData(3000, true)]
    [InlineData(4999, true)]
    [InlineData(5000, false)]
    [InlineData(0, false)]
    public void Close_code_rules(int code, bool valid) => Assert.Equal(valid, CloseStatusRules.IsValidOnWire(code));
}
