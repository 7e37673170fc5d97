namespace Gateway.WebSockets;

/// <summary>Frame opcodes defined by RFC 6455 §5.2. The other values (3-7, 11-15) are reserved and refused.</summary>
#pragma warning disable CA1028 // The opcode is a 4-bit wire field; byte is its natural size.
public enum WebSocketOpcode : byte
#pragma warning restore CA1028
{
    /// <summary>Continues a fragmented message.</summary>
    Continuation = 0,

    /// <summary>UTF-8 text data; this gateway refuses it (close 1003).</summary>
    Text = 1,

    /// <summary>Binary data.</summary>
    Binary = 2,

    /// <summary>Close control frame.</summary>
    Close = 8,

    /// <summary>Ping control frame.</summary>
    Ping = 9,

    /// <summary>Pong control frame.</summary>
    Pong = 10,
}
