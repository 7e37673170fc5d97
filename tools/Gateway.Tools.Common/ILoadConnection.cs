using System.Net;

namespace Gateway.Tools.Common;

/// <summary>
/// One client connection of the system under test, in that system's own protocol. The load generator drives every
/// target through this interface with the same measurement code, so numbers are comparable across systems: our gateway
/// through <see cref="GatewayConnection"/>, the comparison peers through the clients in <c>bench/peers/PeerClients</c>.
/// </summary>
/// <remarks>
/// Thread safety: <see cref="SubscribeAsync"/> and <see cref="PublishAsync"/> may be called concurrently with each
/// other (sends are serialized inside). <see cref="OnMessage"/> and <see cref="OnError"/> are invoked on the
/// connection's receive loop, one call at a time, and must not block; the span passed to <see cref="OnMessage"/> is
/// valid only during the call. Set both callbacks before <see cref="ConnectAsync"/>.
/// </remarks>
public interface ILoadConnection : IAsyncDisposable
{
    /// <summary>Opens the connection (and the system's session on it) and authenticates; throws on failure.</summary>
    /// <param name="endpoint">The server's address, e.g. <c>ws://127.0.0.1:5000/</c> (SignalR: <c>ws://…/hub</c>).</param>
    /// <param name="userId">The user this connection stands for (sent where the protocol has a place for it; ignored
    /// where the token carries it or there is no auth).</param>
    /// <param name="token">A credential, or null for none: a JWT for our gateway, SignalR and Node ws, the server token
    /// for NATS.</param>
    /// <param name="localEndPoint">The local address (and port, 0 for any) to bind, or null for the system's choice.</param>
    /// <param name="ct">Cancels the connect.</param>
    Task ConnectAsync(Uri endpoint, string userId, string? token, IPEndPoint? localEndPoint, CancellationToken ct);

    /// <summary>Joins a room/chat; completes when the server confirmed (or at once where the protocol has no ack).</summary>
    Task SubscribeAsync(string room, CancellationToken ct);

    /// <summary>Publishes an opaque payload to a room (our gateway: a Send with a fresh clientMessageId).</summary>
    ValueTask PublishAsync(string room, ReadOnlyMemory<byte> payload, CancellationToken ct);

    /// <summary>Called for every delivered message, on the receive loop: room, server seq (0 where the protocol has none), payload.</summary>
    Action<string, ulong, ReadOnlySpan<byte>>? OnMessage { get; set; }

    /// <summary>Called when the connection ends unexpectedly or the server reports an error (code text); not on
    /// <see cref="IAsyncDisposable.DisposeAsync"/>.</summary>
    Action<string>? OnError { get; set; }
}

/// <summary>
/// A connection whose server assigns a dense per-room seq and can replay from a cursor (our gateway). The soak
/// scenario needs it for reconnect-with-cursor and for the final "every seq 1..head arrived" check.
/// </summary>
public interface IResumableLoadConnection : ILoadConnection
{
    /// <summary>
    /// Subscribes from a cursor: the server replays every message with seq &gt; <paramref name="afterSeq"/> (through
    /// <see cref="ILoadConnection.OnMessage"/>) and the task completes once the replay is done, with the seq the
    /// replay reached (the room's head at that moment).
    /// </summary>
    Task<ulong> SubscribeAsync(string room, ulong afterSeq, CancellationToken ct);
}
