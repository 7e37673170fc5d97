namespace Gateway.LoadGen.Targets;

/// <summary>
/// Everything a process needs to reach one target. Serialized into each worker's plan, so a worker process can
/// build the same <see cref="ILoadTarget"/> as the coordinator.
/// </summary>
public sealed record TargetSettings
{
    /// <summary>Target name (<see cref="TargetRegistry"/> key).</summary>
    public string Name { get; init; } = "gateway";

    /// <summary>WebSocket endpoint every connection dials.</summary>
    public Uri Endpoint { get; init; } = new("ws://127.0.0.1:8080/v1/ws");

    /// <summary>HTTP base address for setup calls (our gateway's admin API), if the target has one.</summary>
    public Uri? HttpEndpoint { get; init; }

    /// <summary>Admin credential for setup calls.</summary>
    public string? AdminKey { get; init; }

    /// <summary>HS256 key (base64) to mint tokens locally.</summary>
    public string? SigningKey { get; init; }

    /// <summary>Tenant the load users live in.</summary>
    public string Tenant { get; init; } = "load";

    /// <summary>A shared server token, for targets authenticated by one (nats-server's <c>authorization { token }</c>).</summary>
    public string? Token { get; init; }
}

/// <summary>
/// Maps target names to factories. Peers (SignalR, Node ws, nats-server) are registered under their <c>bench/peers/</c> folder names; workers
/// look the name up again in their own process.
/// </summary>
public static class TargetRegistry
{
    private static readonly Dictionary<string, Func<TargetSettings, ILoadTarget>> Factories = new(StringComparer.OrdinalIgnoreCase)
    {
        ["gateway"] = static s => new GatewayTarget(s),
        ["signalr"] = PeerTarget.SignalR,
        ["node-ws"] = PeerTarget.NodeWs,
        ["nats-ws"] = PeerTarget.NatsWs,
    };

    /// <summary>Names of every registered target.</summary>
    public static IReadOnlyCollection<string> Names => Factories.Keys;

    /// <summary>Adds or replaces a target factory.</summary>
    public static void Register(string name, Func<TargetSettings, ILoadTarget> factory) => Factories[name] = factory;

    /// <summary>Builds the target named in <paramref name="settings"/>.</summary>
    public static ILoadTarget Create(TargetSettings settings) =>
        Factories.TryGetValue(settings.Name, out var f)
            ? f(settings)
            : throw new ArgumentException($"Unknown target '{settings.Name}'. Known: {string.Join(", ", Factories.Keys)}.");
}
