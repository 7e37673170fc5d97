using Gateway.Tools.Common;

namespace Gateway.LoadGen.Targets;

/// <summary>
/// A comparison peer from <c>bench/peers/</c> (SignalR, Node ws, nats-server), driven through its client in
/// <c>bench/peers/PeerClients</c>. The peers have no server seq and no room setup: order and loss are checked by the
/// per-publisher counter in the payload, and a room exists as soon as someone joins it.
/// </summary>
public sealed class PeerTarget : ILoadTarget
{
    private readonly Func<ILoadConnection> _create;
    private readonly Func<string, string?> _token;

    private PeerTarget(string name, Func<ILoadConnection> create, Func<string, string?> token)
    {
        Name = name;
        _create = create;
        _token = token;
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public bool HasServerSeq => false;

    /// <summary>
    /// ASP.NET Core SignalR with the MessagePack hub protocol (endpoint <c>ws://host:port/hub</c>). Tokens are HS256
    /// JWTs minted with <see cref="TargetSettings.SigningKey"/> (the peer's <c>PEER_JWT_KEY</c>), or none without a key.
    /// </summary>
    public static PeerTarget SignalR(TargetSettings settings) =>
        new("signalr", static () => new PeerClients.SignalRLoadConnection(), JwtMinter(settings));

    /// <summary>Node.js with <c>ws</c> (endpoint <c>ws://host:port/</c>); tokens as for <see cref="SignalR"/>.</summary>
    public static PeerTarget NodeWs(TargetSettings settings) =>
        new("node-ws", static () => new PeerClients.NodeWsLoadConnection(), JwtMinter(settings));

    /// <summary>
    /// nats-server over its WebSocket listener (endpoint <c>ws://host:port/</c>). Its credential is the server's shared
    /// token (<see cref="TargetSettings.Token"/>, the peer's <c>PEER_NATS_TOKEN</c>): a string compare, not a signature check.
    /// </summary>
    public static PeerTarget NatsWs(TargetSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var token = settings.Token;
        return new("nats-ws", static () => new PeerClients.NatsWsLoadConnection(), _ => token);
    }

    /// <inheritdoc/>
    public ILoadConnection Create() => _create();

    /// <inheritdoc/>
    public Task CreateRoomAsync(string room, IReadOnlyList<string> members, CancellationToken ct) => Task.CompletedTask;

    /// <inheritdoc/>
    public string? TokenFor(string userId) => _token(userId);

    private static Func<string, string?> JwtMinter(TargetSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.SigningKey is not { } k)
        {
            return static _ => null;
        }

        // The same HS256 token our gateway gets (sub, tid, iat, nbf, exp): both peers check signature and lifetime.
        var key = Convert.FromBase64String(k);
        var tenant = settings.Tenant;
        return user => Tokens.Mint(key, tenant, user, TimeSpan.FromHours(12));
    }
}
