using System.Net;

namespace PeerClients;

/// <summary>
/// One client connection of the load generator to one system under test. The load generator has an identical interface;
/// the integrator bridges the two.
/// </summary>
/// <remarks>
/// Thread safety: <see cref="SubscribeAsync"/> and <see cref="PublishAsync"/> may be called concurrently with each
/// other (sends are serialized inside). <see cref="OnMessage"/> and <see cref="OnError"/> are invoked on the
/// connection's receive loop, one call at a time, and must not block; the span passed to <see cref="OnMessage"/> is
/// valid only during the call. Set both callbacks before <see cref="ConnectAsync"/>.
/// </remarks>
public interface ILoadConnection : IAsyncDisposable
{
    /// <summary>Opens the WebSocket (and the peer's session on it) to <paramref name="endpoint"/>.</summary>
    /// <param name="endpoint">The peer's address, e.g. <c>ws://127.0.0.1:5000/</c> (SignalR: <c>ws://…/hub</c>).</param>
    /// <param name="userId">The user this connection stands for (sent where the peer has a place for it).</param>
    /// <param name="token">A credential, or null for none: a JWT for SignalR and Node ws, the server token for NATS.</param>
    /// <param name="localEndPoint">The local address (and port, 0 for any) to bind, or null for the system's choice.</param>
    /// <param name="ct">Cancels the connect.</param>
    Task ConnectAsync(Uri endpoint, string userId, string? token, IPEndPoint? localEndPoint, CancellationToken ct);

    /// <summary>Joins <paramref name="room"/>; completes when the server confirmed (or at once without ack).</summary>
    Task SubscribeAsync(string room, CancellationToken ct);

    /// <summary>Broadcasts <paramref name="payload"/> to every member of <paramref name="room"/>.</summary>
    ValueTask PublishAsync(string room, ReadOnlyMemory<byte> payload, CancellationToken ct);

    /// <summary>Called per delivered message: room, seq (0: the peer has none), payload.</summary>
    Action<string, ulong, ReadOnlySpan<byte>>? OnMessage { get; set; }

    /// <summary>Called once when the connection fails or the server closes it (not on <see cref="IAsyncDisposable.DisposeAsync"/>).</summary>
    Action<string>? OnError { get; set; }
}
