using System.Net;

namespace Gateway.LoadGen.Targets;

/// <summary>
/// One client connection of the system under test, in that system's own protocol. The load generator drives every
/// target through this interface with the same measurement code, so numbers are comparable across systems.
/// </summary>
public interface ILoadConnection : IAsyncDisposable
{
    /// <summary>Connects and authenticates as <paramref name="userId"/> (peers without auth ignore it). Throws on failure.</summary>
    Task ConnectAsync(Uri endpoint, string userId, string? token, IPEndPoint? localEndPoint, CancellationToken ct);

    /// <summary>Joins a room/chat; completes when the server confirmed (or at once where the protocol has no ack).</summary>
    Task SubscribeAsync(string room, CancellationToken ct);

    /// <summary>Publishes an opaque payload to a room (our gateway: a Send with a fresh clientMessageId).</summary>
    ValueTask PublishAsync(string room, ReadOnlyMemory<byte> payload, CancellationToken ct);

    /// <summary>Called for every delivered message, on the receive loop: room, server seq (0 where the protocol has none), payload.</summary>
    Action<string, ulong, ReadOnlySpan<byte>>? OnMessage { get; set; }

    /// <summary>Called when the connection ends unexpectedly or the server reports an error (code text).</summary>
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

/// <summary>A system under test: makes connections and does the setup its scenarios need.</summary>
public interface ILoadTarget
{
    /// <summary>Short name used in reports and on the command line (<c>gateway</c>, <c>signalr</c>, …).</summary>
    string Name { get; }

    /// <summary>
    /// True when delivered messages carry a dense per-room server seq and connections implement
    /// <see cref="IResumableLoadConnection"/>; otherwise order is checked by the per-publisher counter in the payload.
    /// </summary>
    bool HasServerSeq { get; }

    /// <summary>A new, unconnected connection.</summary>
    ILoadConnection Create();

    /// <summary>Creates a room with these members before anyone subscribes (a no-op where rooms need no setup).</summary>
    Task CreateRoomAsync(string room, IReadOnlyList<string> members, CancellationToken ct);

    /// <summary>A credential for <paramref name="userId"/>, or null where the target has no auth.</summary>
    string? TokenFor(string userId);
}
