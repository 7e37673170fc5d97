using Gateway.Domain.Ports;

namespace Gateway.Server.Fanout;

/// <summary>What catch-up needs from the host, shared by every connection.</summary>
/// <param name="History">Where catch-up reads.</param>
/// <param name="PageSize">Messages per history read.</param>
/// <param name="Metrics">Catch-up counters.</param>
/// <param name="Logger">For retried and failed catch-ups.</param>
internal sealed record CatchUpSettings(IMessageHistory History, int PageSize, GatewayMetrics Metrics, ILogger Logger);
