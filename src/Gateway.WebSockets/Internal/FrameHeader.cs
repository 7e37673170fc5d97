using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Gateway.WebSockets.Internal;

/// <summary>Outcome of <see cref="FrameHeader.TryParse(in ReadOnlySequence{byte}, out FrameHeader)"/>.</summary>
internal enum FrameHeaderStatus
{
    /// <summary>A whole header was parsed.</summary>
    Complete,

    /// <summary>Not enough bytes yet; nothing was consumed.</summary>
    Incomplete,

    /// <summary>A 64-bit length with its most significant bit set (RFC 6455 §5.2 forbids it).</summary>
    InvalidLength,
}

/// <summary>What is wrong with a header on its own, before the connection's state is considered.</summary>
internal enum FrameHeaderError
{
    None,
    NotMasked,
    ReservedBits,
    ReservedOpcode,
    ControlTooLong,
    ControlFragmented,
}

/// <summary>The parsed fixed part of a WebSocket frame (RFC 6455 §5.2). A pure value; parsing never throws.</summary>
[StructLayout(LayoutKind.Auto)]
internal readonly struct FrameHeader
{
    /// <summary>2 fixed bytes + 8 bytes of 64-bit extended length + 4 bytes of mask key.</summary>
    public const int MaxLength = 14;

    /// <summary>Control frames carry at most 125 payload bytes: the 7-bit length without the 126/127 escapes.</summary>
    public const int MaxControlPayload = 125;

    private readonly byte _b0;
    private readonly byte _b1;

    public FrameHeader(byte b0, byte b1, long payloadLength, int headerLength, uint maskKey)
    {
        _b0 = b0;
        _b1 = b1;
        PayloadLength = payloadLength;
        HeaderLength = headerLength;
        MaskKey = maskKey;
    }

    public bool Fin => (_b0 & 0x80) != 0;

    /// <summary>RSV1..RSV3 as a 3-bit number (RSV1 is the high bit).</summary>
    public int ReservedBits => (_b0 >> 4) & 0x7;

    public WebSocketOpcode Opcode => (WebSocketOpcode)(_b0 & 0x0F);

    public bool IsControl => (_b0 & 0x08) != 0;

    public bool Masked => (_b1 & 0x80) != 0;

    public long PayloadLength { get; }

    /// <summary>Bytes before the payload: 2, 4 or 10, plus 4 when masked.</summary>
    public int HeaderLength { get; }

    /// <summary>The mask key as read from memory in native order, so byte <c>k</c> of the key is byte <c>k</c> in memory.</summary>
    public uint MaskKey { get; }

    /// <summary>Parses a header from the start of <paramref name="buffer"/>, which may be split anywhere.</summary>
    public static FrameHeaderStatus TryParse(in ReadOnlySequence<byte> buffer, out FrameHeader header)
    {
        ReadOnlySpan<byte> first = buffer.FirstSpan;
        if (first.Length >= MaxLength || buffer.IsSingleSegment)
        {
            return TryParse(first, out header);
        }

        return TryParseMultiSegment(buffer, out header);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static FrameHeaderStatus TryParseMultiSegment(in ReadOnlySequence<byte> buffer, out FrameHeader header)
    {
        // The header straddles segments: copy at most 14 bytes to the stack, like Kestrel's HTTP parser does.
        Span<byte> copy = stackalloc byte[MaxLength];
        int n = (int)Math.Min(buffer.Length, MaxLength);
        buffer.Slice(0, n).CopyTo(copy);
        return TryParse(copy[..n], out header);
    }

    /// <summary>Parses a header from the start of <paramref name="span"/>.</summary>
    public static FrameHeaderStatus TryParse(ReadOnlySpan<byte> span, out FrameHeader header)
    {
        header = default;
        if (span.Length < 2)
        {
            return FrameHeaderStatus.Incomplete;
        }

        byte b0 = span[0];
        byte b1 = span[1];
        int length7 = b1 & 0x7F;
        int maskBytes = (b1 & 0x80) != 0 ? 4 : 0;
        int offset;
        long payloadLength;
        if (length7 < 126)
        {
            offset = 2;
            payloadLength = length7;
        }
        else if (length7 == 126)
        {
            offset = 4;
            if (span.Length < offset)
            {
                return FrameHeaderStatus.Incomplete;
            }

            payloadLength = BinaryPrimitives.ReadUInt16BigEndian(span[2..]);
        }
        else
        {
            offset = 10;
            if (span.Length < offset)
            {
                return FrameHeaderStatus.Incomplete;
            }

            ulong raw = BinaryPrimitives.ReadUInt64BigEndian(span[2..]);
            if (raw > long.MaxValue)
            {
                return FrameHeaderStatus.InvalidLength;
            }

            payloadLength = (long)raw;
        }

        if (span.Length < offset + maskBytes)
        {
            return FrameHeaderStatus.Incomplete;
        }

        uint mask = maskBytes != 0 ? MemoryMarshal.Read<uint>(span.Slice(offset, 4)) : 0;
        header = new FrameHeader(b0, b1, payloadLength, offset + maskBytes, mask);
        return FrameHeaderStatus.Complete;
    }

    /// <summary>The checks a client frame must pass on its own (RFC 6455 §5.1, §5.2, §5.5); all answer 1002.</summary>
    public FrameHeaderError Validate()
    {
        if (!Masked)
        {
            return FrameHeaderError.NotMasked;
        }

        // No extension is negotiated, so any reserved bit is an error (§5.2).
        if (ReservedBits != 0)
        {
            return FrameHeaderError.ReservedBits;
        }

        byte op = (byte)Opcode;
        if (op is >= 3 and <= 7 or >= 11)
        {
            return FrameHeaderError.ReservedOpcode;
        }

        if (IsControl)
        {
            if (PayloadLength > MaxControlPayload)
            {
                return FrameHeaderError.ControlTooLong;
            }

            if (!Fin)
            {
                return FrameHeaderError.ControlFragmented;
            }
        }

        return FrameHeaderError.None;
    }

    public static string Describe(FrameHeaderError error) => error switch
    {
        FrameHeaderError.NotMasked => "client frames must be masked",
        FrameHeaderError.ReservedBits => "reserved bits set",
        FrameHeaderError.ReservedOpcode => "reserved opcode",
        FrameHeaderError.ControlTooLong => "control frame payload over 125 bytes",
        FrameHeaderError.ControlFragmented => "fragmented control frame",
        _ => "ok",
    };
}
