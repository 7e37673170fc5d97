namespace Gateway.Client.Internal;

/// <summary>What the client remembers of one subscribed chat. Guarded by the client's chat lock.</summary>
internal sealed class ChatState(ulong cursor)
{
    /// <summary>The highest seq handed to the application (0: none yet).</summary>
    public ulong Cursor { get; set; } = cursor;

    /// <summary>A gap re-subscribe is in flight: further out-of-order messages are dropped without another one.</summary>
    public bool Repairing { get; set; }

    /// <summary>The cursor at which the last gap repair was asked for, or null. A second gap at the same cursor
    /// after a repair means the server has no such message (e.g. it expired): the hole is accepted, not
    /// re-requested forever.</summary>
    public ulong? RepairedAt { get; set; }
}
