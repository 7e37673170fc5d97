namespace Gateway.Protocol;

/// <summary>Names and default limits of protocol <c>chatgw.v1</c>. See <c>proto/PROTOCOL.md</c>.</summary>
public static class ProtocolConstants
{
    /// <summary>The WebSocket subprotocol a client must offer; the version is part of the name.</summary>
    public const string SubProtocol = "chatgw.v1";

    /// <summary>Protocol major version carried in <see cref="FrameType.Hello"/>.</summary>
    public const int Version = 1;

    /// <summary>Prefix of the subprotocol entry that carries a token for browsers (<c>access_token.&lt;jwt&gt;</c>).</summary>
    public const string TokenSubProtocolPrefix = "access_token.";

    /// <summary>Default WebSocket path.</summary>
    public const string DefaultPath = "/v1/ws";

    /// <summary>Largest WebSocket message (all fragments together) a server accepts by default: 64 KiB.</summary>
    public const int DefaultMaxMessageBytes = 64 * 1024;

    /// <summary>Largest message content by default: 32 KiB, half a frame, so a Send always fits with its headers.</summary>
    public const int DefaultMaxContentBytes = 32 * 1024;

    /// <summary>Longest chat or tenant id, in bytes.</summary>
    public const int MaxChatIdBytes = 64;

    /// <summary>Longest user id, in bytes.</summary>
    public const int MaxUserIdBytes = 128;

    /// <summary>Longest client message id (idempotency key), in bytes.</summary>
    public const int MaxClientMessageIdBytes = 64;

    /// <summary>Longest content type, in bytes.</summary>
    public const int MaxContentTypeBytes = 64;

    /// <summary>Most chats in one Subscribe or Unsubscribe frame by default.</summary>
    public const int DefaultMaxChatsPerSubscribe = 500;

    /// <summary>Most messages in one history page.</summary>
    public const int MaxHistoryPage = 200;
}
