using System.Buffers;
using Gateway.WebSockets.Internal;

namespace Gateway.Fuzz;

/// <summary>
/// Target <c>frame-header</c>: <see cref="FrameHeader.TryParse(ReadOnlySpan{byte}, out FrameHeader)"/>, its
/// multi-segment overload, and <see cref="FrameHeader.Validate"/>.
/// </summary>
/// <remarks>
/// Contract: parsing never throws and answers only the three statuses; the answer matches an independent reading of
/// RFC 6455 §5.2 written out bit by bit below (lengths, header size, mask key, flags); a Complete header never claims
/// more bytes than were given; every segmentation of the input gives the same answer; and Validate names exactly the
/// first rule of §5.1/§5.2/§5.5 that the header breaks, in the documented order.
/// </remarks>
public static class FrameHeaderTarget
{
    public const string Name = "frame-header";

    public static void Run(ReadOnlySpan<byte> data)
    {
        var status = FrameHeader.TryParse(data, out var header);
        CheckAgainstOracle(data, status, header);

        // The sequence overload: one segment, two and three segments at input-derived cuts, and byte by byte over the
        // whole 14-byte maximum, which forces the stack-copy path for every possible straddle.
        var (c1, c2) = Segments.CutsFor(data);
        Same(data, status, header, Segments.Split(data), "single segment");
        Same(data, status, header, Segments.Split(data, c1), $"split at {c1}");
        Same(data, status, header, Segments.Split(data, c1, c2), $"split at {c1},{c2}");
        Same(data, status, header, Segments.Bytewise(data, FrameHeader.MaxLength), "byte by byte");

        if (status == FrameHeaderStatus.Complete)
        {
            var error = header.Validate();
            var expected = ExpectedError(data[0], data[1], header.PayloadLength);
            ContractViolationException.Check(error == expected, $"Validate() = {error}, RFC 6455 says {expected}");
            var text = FrameHeader.Describe(error);
            ContractViolationException.Check(!string.IsNullOrEmpty(text), "Describe returned nothing");
            ContractViolationException.Check((error == FrameHeaderError.None) == (text == "ok"), $"Describe({error}) = '{text}'");
        }
    }

    private static void Same(ReadOnlySpan<byte> data, FrameHeaderStatus status, in FrameHeader header,
        in ReadOnlySequence<byte> sequence, string how)
    {
        var s = FrameHeader.TryParse(sequence, out var h);
        ContractViolationException.Check(s == status, $"{how}: status {s}, single span gave {status}");
        ContractViolationException.Check(
            h.Fin == header.Fin && h.ReservedBits == header.ReservedBits && h.Opcode == header.Opcode &&
            h.Masked == header.Masked && h.PayloadLength == header.PayloadLength &&
            h.HeaderLength == header.HeaderLength && h.MaskKey == header.MaskKey,
            $"{how}: header differs from the single-span parse of {data.Length} bytes");
    }

    /// <summary>RFC 6455 §5.2 read literally: 7-bit length, 126 → 16-bit, 127 → 63-bit (MSB must be 0), then the mask.</summary>
    private static void CheckAgainstOracle(ReadOnlySpan<byte> data, FrameHeaderStatus status, in FrameHeader header)
    {
        ContractViolationException.Check(Enum.IsDefined(status), $"undefined status {(int)status}");
        if (data.Length < 2)
        {
            ContractViolationException.Check(status == FrameHeaderStatus.Incomplete, $"{data.Length} bytes gave {status}");
            return;
        }

        int len7 = data[1] & 0x7F;
        int extended = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
        bool masked = (data[1] & 0x80) != 0;
        int need = 2 + extended + (masked ? 4 : 0);

        if (data.Length < 2 + extended)
        {
            ContractViolationException.Check(status == FrameHeaderStatus.Incomplete, $"extended length cut short gave {status}");
            return;
        }

        ulong length = (ulong)len7;
        if (extended > 0)
        {
            length = 0;
            for (int i = 0; i < extended; i++)
            {
                length = (length << 8) | data[2 + i];
            }
        }

        if (length >> 63 != 0)
        {
            ContractViolationException.Check(status == FrameHeaderStatus.InvalidLength, $"length {length:x} with the MSB set gave {status}");
            return;
        }

        if (data.Length < need)
        {
            ContractViolationException.Check(status == FrameHeaderStatus.Incomplete, $"{data.Length} of {need} header bytes gave {status}");
            return;
        }

        ContractViolationException.Check(status == FrameHeaderStatus.Complete, $"a whole {need}-byte header gave {status}");
        ContractViolationException.Check(header.HeaderLength == need, $"HeaderLength {header.HeaderLength}, expected {need}");
        ContractViolationException.Check(header.HeaderLength <= data.Length, "header longer than the input");
        ContractViolationException.Check(header.PayloadLength >= 0 && (ulong)header.PayloadLength == length,
            $"PayloadLength {header.PayloadLength}, expected {length}");
        ContractViolationException.Check(header.Fin == ((data[0] & 0x80) != 0), "FIN bit");
        ContractViolationException.Check(header.ReservedBits == ((data[0] >> 4) & 7), "RSV bits");
        ContractViolationException.Check((int)header.Opcode == (data[0] & 0x0F), "opcode");
        ContractViolationException.Check(header.IsControl == ((data[0] & 0x08) != 0), "control bit");
        ContractViolationException.Check(header.Masked == masked, "MASK bit");

        // MaskKey holds the key's bytes in memory order: byte k of the key is byte k of the uint's storage.
        Span<byte> key = stackalloc byte[4];
        System.Runtime.InteropServices.MemoryMarshal.Write(key, header.MaskKey);
        ReadOnlySpan<byte> wire = masked ? data.Slice(2 + extended, 4) : [0, 0, 0, 0];
        ContractViolationException.Check(key.SequenceEqual(wire), "mask key bytes");
    }

    /// <summary>The first client-frame rule broken, in the order Validate documents: mask, RSV, opcode, control size, control FIN.</summary>
    private static FrameHeaderError ExpectedError(byte b0, byte b1, long payloadLength)
    {
        int opcode = b0 & 0x0F;
        if ((b1 & 0x80) == 0)
        {
            return FrameHeaderError.NotMasked;
        }

        if ((b0 & 0x70) != 0)
        {
            return FrameHeaderError.ReservedBits;
        }

        // Defined opcodes (§5.2, §11.8): 0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong.
        if (opcode is not (0 or 1 or 2 or 8 or 9 or 10))
        {
            return FrameHeaderError.ReservedOpcode;
        }

        if (opcode >= 8 && payloadLength > 125)
        {
            return FrameHeaderError.ControlTooLong;
        }

        if (opcode >= 8 && (b0 & 0x80) == 0)
        {
            return FrameHeaderError.ControlFragmented;
        }

        return FrameHeaderError.None;
    }
}
