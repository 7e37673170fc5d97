using System.Buffers;

namespace Gateway.WebSockets;

/// <summary>Receives the complete binary messages of one <see cref="WebSocketConnection"/>.</summary>
public interface IWebSocketMessageHandler
{
    /// <summary>
    /// Handles one complete binary message (fragments already joined). Called from the connection's receive loop, one
    /// message at a time: the next frame is not read until the returned task completes.
    /// </summary>
    /// <param name="connection">The connection the message arrived on.</param>
    /// <param name="payload">
    /// The unmasked payload. Valid only until the returned task completes: it may point straight into the transport's
    /// buffer. Copy whatever must outlive the call.
    /// </param>
    /// <returns>A task that completes when the message is handled. A fault closes the connection with 1011.</returns>
    ValueTask OnMessageAsync(WebSocketConnection connection, ReadOnlySequence<byte> payload);
}
