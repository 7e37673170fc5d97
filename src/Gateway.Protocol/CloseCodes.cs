namespace Gateway.Protocol;

/// <summary>WebSocket close codes this protocol uses (RFC 6455 §7.4 plus the private range 4000-4999).</summary>
public static class CloseCodes
{
    /// <summary>Normal closure.</summary>
    public const ushort Normal = 1000;

    /// <summary>The server is going away (shutdown, drain); reconnect, possibly elsewhere.</summary>
    public const ushort GoingAway = 1001;

    /// <summary>RFC 6455 protocol violation by the peer.</summary>
    public const ushort ProtocolError = 1002;

    /// <summary>A text frame: this protocol carries binary frames only.</summary>
    public const ushort UnsupportedData = 1003;

    /// <summary>A close frame carried no code (never sent on the wire).</summary>
    public const ushort NoStatus = 1005;

    /// <summary>The payload is not what the protocol expects (not a MessagePack array frame; bad UTF-8 in a close reason).</summary>
    public const ushort InvalidPayload = 1007;

    /// <summary>Policy violation (e.g. too many malformed frames).</summary>
    public const ushort PolicyViolation = 1008;

    /// <summary>A message is over the maximum message size.</summary>
    public const ushort MessageTooBig = 1009;

    /// <summary>The server hit an unexpected condition.</summary>
    public const ushort InternalError = 1011;

    /// <summary>The token expired. Reconnect with a fresh token.</summary>
    public const ushort TokenExpired = 4001;

    /// <summary>The client did not read fast enough; its outbound queue overflowed. Reconnect and resume from cursors.</summary>
    public const ushort SlowConsumer = 4002;
}
