namespace Gateway.Cql.Protocol;

/// <summary>Message kinds of the frame header (spec §2.4).</summary>
internal enum CqlOpcode : byte
{
    Error = 0x00,
    Startup = 0x01,
    Ready = 0x02,
    Authenticate = 0x03,
    Options = 0x05,
    Supported = 0x06,
    Query = 0x07,
    Result = 0x08,
    Prepare = 0x09,
    Execute = 0x0A,
    Register = 0x0B,
    Event = 0x0C,
    Batch = 0x0D,
    AuthChallenge = 0x0E,
    AuthResponse = 0x0F,
    AuthSuccess = 0x10,
}

/// <summary>Frame header flags (spec §2.2).</summary>
[Flags]
internal enum CqlFrameFlags : byte
{
    None = 0x00,
    Compression = 0x01,
    Tracing = 0x02,
    CustomPayload = 0x04,
    Warning = 0x08,
}

/// <summary>Constants of the v4 frame layout (spec §2).</summary>
internal static class CqlFrame
{
    public const int HeaderLength = 9;
    public const byte RequestVersion = 0x04;
    public const byte ResponseVersion = 0x84;

    /// <summary>The spec caps a frame body at 256 MB (§2.5); anything larger means the stream is out of sync.</summary>
    public const int MaxBodyLength = 256 * 1024 * 1024;
}

/// <summary>A response frame whose body was copied once into a pooled buffer; whoever ends up owning it returns it.</summary>
/// <param name="Opcode">The message kind.</param>
/// <param name="Flags">The header flags.</param>
/// <param name="Stream">The stream id it answers (-1 for events).</param>
/// <param name="Body">The rented buffer holding the body from index 0.</param>
/// <param name="Length">The body length.</param>
internal readonly record struct CqlResponseFrame(CqlOpcode Opcode, CqlFrameFlags Flags, short Stream, byte[] Body, int Length)
{
    public ReadOnlySpan<byte> Span => Body.AsSpan(0, Length);

    public void Release()
    {
        if (Body.Length > 0)
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(Body);
        }
    }
}
