using System.Text.Json;
using Gateway.Domain;
using Gateway.Server.Connections;
using Gateway.Storage.RocksDb;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using NATS.Client.Core;

namespace Gateway.Server;

public static partial class GatewayHost
{
    /// <summary>
    /// The readiness checks of <c>/readyz</c>, by role: <c>store</c> (the RocksDB store is open and healthy, or a Scylla node is
    /// reachable; embedded and writer), <c>commit-loop</c> (the embedded write service's commit loop runs), <c>nats</c> (connected to NATS; gateway
    /// and writer), <c>projection</c> (the role's NATS parts started and, in a writer, the projection keeps up with the log),
    /// <c>keys</c> (signing keys from a JWKS URL or OpenID Connect discovery have been fetched; always healthy with keys
    /// from settings or files), <c>drain</c> (not shutting down).
    /// </summary>
    private static void AddReadiness(IServiceCollection services, GatewayRole role)
    {
        var checks = services.AddHealthChecks();
        if (role != GatewayRole.Gateway)
        {
            checks.AddCheck<StoreCheck>("store");
        }

        if (role == GatewayRole.All)
        {
            checks.AddCheck<CommitLoopCheck>("commit-loop");
        }

        if (role != GatewayRole.All)
        {
            checks.AddCheck<NatsCheck>("nats");
            checks.AddCheck<ProjectionCheck>("projection");
        }

        checks.AddCheck<KeysCheck>("keys");
        checks.AddCheck<DrainCheck>("drain");
    }

    /// <summary>
    /// <c>GET /readyz</c>: 200 <c>{"status":"Healthy","checks":{…}}</c> while this server should receive traffic; 503 with
    /// <c>"failing":[names]</c> and each failing check's reason otherwise: while a distributed role starts or has lost NATS,
    /// a writer's projection is far behind or stalled, the store or the commit loop failed, and from the moment a drain
    /// starts (so the load balancer stops sending new clients here). <c>/healthz</c> (liveness) stays 200 throughout.
    /// </summary>
    private static void MapReadiness(WebApplication app)
    {
        app.MapGet("/readyz", async (HealthCheckService health, HttpContext context) =>
        {
            var report = await health.CheckHealthAsync(context.RequestAborted).ConfigureAwait(false);
            var body = new Dictionary<string, object>
            {
                ["status"] = report.Status.ToString(),
            };
            var failing = report.Entries.Where(e => e.Value.Status != HealthStatus.Healthy).Select(e => e.Key).ToArray();
            if (failing.Length > 0)
            {
                body["failing"] = failing;
            }

            body["checks"] = report.Entries.ToDictionary(
                e => e.Key,
                e => e.Value.Status == HealthStatus.Healthy ? "Healthy" : $"{e.Value.Status}: {e.Value.Description ?? e.Value.Exception?.Message}");
            context.Response.Headers.CacheControl = "no-store";
            return Results.Json(body, ReadinessJson, statusCode: report.Status == HealthStatus.Healthy ? 200 : 503);
        });
    }

    private static readonly JsonSerializerOptions ReadinessJson = new(JsonSerializerDefaults.Web);

    /// <summary>The store is open and RocksDB has no background error.</summary>
    private sealed class StoreCheck(IServiceProvider services) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(services.GetService<Gateway.Domain.Ports.IChatStore>() switch
            {
                RocksDbChatStore rocks when !rocks.IsHealthy(out var problem) => HealthCheckResult.Unhealthy(problem),
                Gateway.Storage.Scylla.ScyllaChatStore scylla when !scylla.IsHealthy(out var problem) => HealthCheckResult.Unhealthy(problem),
                _ => HealthCheckResult.Healthy(),
            });
    }

    /// <summary>The embedded commit loop has not stopped.</summary>
    private sealed class CommitLoopCheck(IServiceProvider services) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            var writer = services.GetRequiredService<LocalWriteService>();
            return Task.FromResult(writer.IsCommitLoopRunning
                ? HealthCheckResult.Healthy()
                : HealthCheckResult.Unhealthy(writer.CommitLoopFault is { } fault ? $"the commit loop failed: {fault.Message}" : "the commit loop has stopped"));
        }
    }

    /// <summary>The NATS connection is open (NATS.Net reconnects by itself; meanwhile this pod should get no traffic).</summary>
    private sealed class NatsCheck(INatsConnection connection) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(connection.ConnectionState == NatsConnectionState.Open
                ? HealthCheckResult.Healthy()
                : HealthCheckResult.Unhealthy($"not connected to NATS ({connection.ConnectionState})"));
    }

    /// <summary>The role's NATS parts run and, in a writer, the projection keeps up (<see cref="NatsRuntime.NotReadyReason"/>).</summary>
    private sealed class ProjectionCheck(NatsRuntime runtime) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(runtime.NotReadyReason() is { } reason ? HealthCheckResult.Unhealthy(reason) : HealthCheckResult.Healthy());
    }

    /// <summary>Remote signing keys, when configured, have arrived: without any every token is refused, so the pod
    /// should get no clients (the fetch is retried every few seconds meanwhile).</summary>
    private sealed class KeysCheck(Auth.JwtAuthenticator authenticator) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(authenticator.Remote is { HasKeys: false }
                ? HealthCheckResult.Unhealthy("no signing keys fetched from the issuer yet")
                : HealthCheckResult.Healthy());
    }

    /// <summary>No drain under way.</summary>
    private sealed class DrainCheck(DrainCoordinator drain) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(drain.IsDraining ? HealthCheckResult.Unhealthy("draining") : HealthCheckResult.Healthy());
    }
}
