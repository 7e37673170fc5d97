namespace Gateway.Tools.Common;

/// <summary>Gateway.Server command-line settings the load tools start their servers with.</summary>
public static class GatewayServerArgs
{
    /// <summary>Limits a load test must lift: per-IP admission (every load user is one of many on one or a few source
    /// addresses), the per-user connection cap, send and subscribe rates, the drain grace; and logging at Warning.</summary>
    public static readonly string[] LoadLimits =
    [
        "--Gateway:HandshakesPerSecondPerIp=0",
        "--Gateway:MaxConnectionsPerIp=0",
        "--Gateway:MaxConnectionsPerUser=0",
        "--Gateway:SendsPerSecond=1000000",
        "--Gateway:SendBurst=1000000",
        "--Gateway:SubscribesPerSecond=100000",
        "--Gateway:SubscribeBurst=100000",
        "--Gateway:DrainGraceSeconds=0",
        "--Logging:LogLevel:Default=Warning",
    ];
}
