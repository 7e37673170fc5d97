using System.Diagnostics.Metrics;

namespace Gateway.Server;

/// <summary>Counters operators watch (meter <c>Gateway</c>; read them with dotnet-counters).</summary>
public sealed class GatewayMetrics : IDisposable
{
    private readonly Meter _meter = new("Gateway");
    private long _connections;

    /// <summary>Creates the instruments.</summary>
    public GatewayMetrics()
    {
        _meter.CreateObservableGauge("gateway.connections", () => Interlocked.Read(ref _connections), description: "Open WebSocket sessions");
        Deliveries = _meter.CreateCounter<long>("gateway.deliveries", description: "Live Message frames enqueued to sessions");
        CatchUpMessages = _meter.CreateCounter<long>("gateway.catchup.messages", description: "History Message frames enqueued during catch-up");
        SlowConsumerCloses = _meter.CreateCounter<long>("gateway.slow_consumer.closes", description: "Connections closed with 4002");
        HandshakeRejects = _meter.CreateCounter<long>("gateway.handshake.rejects", description: "Upgrades answered with an HTTP error");
        Sends = _meter.CreateCounter<long>("gateway.sends", description: "Send frames answered, tagged by result");
        EphemeralDropped = _meter.CreateCounter<long>("gateway.ephemeral.dropped", description: "Typing notices dropped for connections with a half-full queue");
        RateLimited = _meter.CreateCounter<long>("gateway.rate_limited", description: "Requests refused or dropped by a per-user rate limit, tagged by kind");
    }

    /// <summary>Live deliveries.</summary>
    public Counter<long> Deliveries { get; }

    /// <summary>Catch-up deliveries.</summary>
    public Counter<long> CatchUpMessages { get; }

    /// <summary>Slow-consumer disconnects.</summary>
    public Counter<long> SlowConsumerCloses { get; }

    /// <summary>Rejected handshakes.</summary>
    public Counter<long> HandshakeRejects { get; }

    /// <summary>Send results.</summary>
    public Counter<long> Sends { get; }

    /// <summary>Ephemeral signals dropped under pressure.</summary>
    public Counter<long> EphemeralDropped { get; }

    /// <summary>Rate-limited requests.</summary>
    public Counter<long> RateLimited { get; }

    /// <summary>Open sessions right now.</summary>
    public long Connections => Interlocked.Read(ref _connections);

    internal void ConnectionOpened() => Interlocked.Increment(ref _connections);

    internal void ConnectionClosed() => Interlocked.Decrement(ref _connections);

    /// <inheritdoc/>
    public void Dispose() => _meter.Dispose();
}
