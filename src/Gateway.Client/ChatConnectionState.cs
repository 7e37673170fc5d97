namespace Gateway.Client;

/// <summary>Where a <see cref="ChatClient"/>'s connection stands.</summary>
public enum ChatConnectionState
{
    /// <summary>Not connected yet.</summary>
    Disconnected,

    /// <summary>The first connect is in progress.</summary>
    Connecting,

    /// <summary>Connected, Hello received, subscriptions resumed.</summary>
    Connected,

    /// <summary>The connection dropped; the client is backing off and reconnecting.</summary>
    Reconnecting,

    /// <summary>Disposed, or ended for good (a fatal close, or a drop with AutoReconnect off).</summary>
    Closed,
}

/// <summary>Payload of <see cref="ChatClient.ConnectionStateChanged"/>.</summary>
public sealed class ChatConnectionStateChangedEventArgs : EventArgs
{
    /// <summary>Creates the event payload.</summary>
    public ChatConnectionStateChangedEventArgs(ChatConnectionState state, int? closeStatus, Exception? error)
    {
        State = state;
        CloseStatus = closeStatus;
        Error = error;
    }

    /// <summary>The new state.</summary>
    public ChatConnectionState State { get; }

    /// <summary>The close code the server sent when the change was caused by a close frame.</summary>
    public int? CloseStatus { get; }

    /// <summary>What ended the previous connection, or why the client closed for good.</summary>
    public Exception? Error { get; }
}
