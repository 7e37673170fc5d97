namespace Gateway.Protocol;

/// <summary>
/// The type tag in element 0 of every frame. Client frames are 1..31, server frames 32..63.
/// Unknown client tags are answered with <see cref="ErrorCode.UnknownFrameType"/>; clients ignore unknown server tags.
/// </summary>
public enum FrameType : byte
{
    /// <summary>Client: subscribe to chats from cursors.</summary>
    Subscribe = 1,

    /// <summary>Client: stop receiving chats.</summary>
    Unsubscribe = 2,

    /// <summary>Client: send a message.</summary>
    Send = 3,

    /// <summary>Client: ask for an older page of a chat.</summary>
    History = 4,

    /// <summary>Client: "I am typing in this chat" (ephemeral, never stored, dropped first under pressure).</summary>
    Typing = 5,

    /// <summary>Client: replace the connection's token before it expires, without reconnecting.</summary>
    RefreshToken = 6,

    /// <summary>Server: first frame after the handshake.</summary>
    Hello = 32,

    /// <summary>Server: answer to Subscribe, one result per chat.</summary>
    Subscribed = 33,

    /// <summary>Server: answer to Unsubscribe.</summary>
    Unsubscribed = 34,

    /// <summary>Server: a Send is durable.</summary>
    SendAck = 35,

    /// <summary>Server: a request failed, or the connection has a problem.</summary>
    Error = 36,

    /// <summary>Server: one chat message (history or live).</summary>
    Message = 37,

    /// <summary>Server: history replay for a chat is complete; live messages follow.</summary>
    CaughtUp = 38,

    /// <summary>Server: answer to History.</summary>
    HistoryPage = 39,

    /// <summary>Server: a subscription was ended by the server (e.g. the user was removed from the chat).</summary>
    Revoked = 40,

    /// <summary>Server: answer to RefreshToken; the connection now lives until the new expiry.</summary>
    TokenRefreshed = 41,

    /// <summary>Server: another member is typing in a subscribed chat (ephemeral).</summary>
    UserTyping = 42,

    /// <summary>Server: the token expires soon; send RefreshToken or be closed with 4001.</summary>
    TokenExpiring = 43,

    /// <summary>Server: this server is draining; reconnect (to any server) after the given delay.</summary>
    Drain = 44,
}
