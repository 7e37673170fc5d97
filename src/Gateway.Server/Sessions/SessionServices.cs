using Gateway.Domain.Ports;
using Gateway.Server.Auth;
using Gateway.Server.Fanout;
using Gateway.Server.Logging;

namespace Gateway.Server.Sessions;

/// <summary>Everything a session needs from the host, shared by all sessions.</summary>
internal sealed record SessionServices(
    IWriteService Writer,
    IMessageHistory History,
    IMembership Membership,
    ChatRegistry Registry,
    GatewayOptions Options,
    GatewayMetrics Metrics,
    TimeProvider Time,
    ILogger Logger,
    JwtAuthenticator Auth,
    UserLimits Limits)
{
    /// <summary>Slow-consumer closes are logged at most once per <see cref="GatewayOptions.SlowConsumerLogSeconds"/>: a
    /// burst of them (a broadcast outrunning many readers) would otherwise flood the log; the metric counts each one.</summary>
    public LogThrottle SlowConsumerLog { get; } = new(Time, TimeSpan.FromSeconds(Options.SlowConsumerLogSeconds));

    /// <summary>What every session's catch-up runs share (one instance, not one per connection).</summary>
    public CatchUpSettings CatchUp { get; } = new(History, Options.CatchUpPageSize, Metrics, Logger);
}
