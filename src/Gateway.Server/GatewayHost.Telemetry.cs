using System.Diagnostics.Metrics;
using Gateway.Domain;
using Gateway.Server.Connections;
using NATS.Client.Core;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Gateway.Server;

public static partial class GatewayHost
{
    /// <summary>Meters exported besides ours: Kestrel's connection metrics and the runtime's (GC, thread pool, memory).</summary>
    internal static readonly string[] ExportedMeters = [WriteMetrics.MeterName, "Microsoft.AspNetCore.Server.Kestrel"];

    private static readonly Dictionary<string, string> RuntimeRenames = new(StringComparer.Ordinal)
    {
        ["dotnet.assembly.count"] = "dotnet.assemblies",
        ["dotnet.process.cpu.count"] = "dotnet.process.cpus",
        ["dotnet.thread_pool.thread.count"] = "dotnet.thread_pool.threads",
        ["dotnet.timer.count"] = "dotnet.timers",
    };

    /// <summary>
    /// Metrics and traces through OpenTelemetry: meter <c>Gateway</c>, Kestrel's and the runtime's as Prometheus text at
    /// <c>GET /metrics</c> on the HTTP listener (<see cref="MapTelemetry"/>), also over OTLP when
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set; traces (source <c>Gateway</c>) only then, over OTLP (the exporter reads the other <c>OTEL_EXPORTER_OTLP_*</c> settings itself).
    /// </summary>
    /// <remarks>OpenTelemetry rather than prometheus-net: our instruments are <see cref="System.Diagnostics.Metrics"/>
    /// instruments (as Kestrel's and the runtime's are), which OpenTelemetry exports as they are, with their units, to
    /// Prometheus and OTLP alike, and the same SDK carries the traces. prometheus-net would need every instrument defined
    /// twice or an adapter, and has no OTLP. The cost: its ASP.NET Core Prometheus exporter is served only as a beta.</remarks>
    private static void AddTelemetry(WebApplicationBuilder builder, GatewayRole role)
    {
        var otlp = !string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("chatgw", serviceVersion: GatewayMetrics.Version)
                .AddAttributes([new("chatgw.role", RoleName(role))]))
            .WithMetrics(m =>
            {
                m.AddMeter(ExportedMeters);

                // On .NET 9 and later this enables the runtime's own "System.Runtime" meter (dotnet.* instruments).
                m.AddRuntimeInstrumentation();

                m.AddPrometheusExporter();
                if (otlp)
                {
                    m.AddOtlpExporter();
                }
            });

        // Traces only where they can go: a tracer provider without an exporter would still sample every send and
        // allocate its spans (the sources check for listeners, and a provider is one) for nothing.
        if (otlp)
        {
            telemetry.WithTracing(t => t.AddSource(GatewayTracing.SourceName).AddOtlpExporter());
        }

        builder.Services.ConfigureOpenTelemetryMeterProvider(static (services, b) =>
        {
            var own = services.GetRequiredService<IMeterFactory>();
            b.AddView(instrument =>
                // Meters made by a meter factory belong to one host (Kestrel's, our NATS gauge): a host that shares
                // the process with others (tests) exports only its own, so that it never merges another host's
                // series into its own, nor loses them when that host stops.
                instrument.Meter.Scope is IMeterFactory scope && !ReferenceEquals(scope, own) ? MetricStreamConfiguration.Drop

                // Four of the runtime's gauges end in ".count", which Prometheus reserves for histograms and
                // summaries (promtool rejects them): exported under plural names instead.
                : instrument.Meter.Name == "System.Runtime" && RuntimeRenames.TryGetValue(instrument.Name, out var name)
                    ? new MetricStreamConfiguration { Name = name }
                    : null);
        });
    }

    /// <summary><c>GET /metrics</c> (Prometheus text format; OpenMetrics when the scraper asks for it). Only the HTTP listener
    /// has an HTTP pipeline: the WebSocket listener's connections never reach routing.</summary>
    private static void MapTelemetry(WebApplication app)
    {
        var metrics = app.Services.GetRequiredService<GatewayMetrics>();
        var drain = app.Services.GetRequiredService<DrainCoordinator>();
        metrics.OutboundQueued = drain.FramesQueued;
        if (app.Services.GetService<INatsConnection>() is { } nats)
        {
            GatewayMetrics.ObserveNats(app.Services.GetRequiredService<IMeterFactory>(), () => nats.ConnectionState == NatsConnectionState.Open);
        }

        app.MapPrometheusScrapingEndpoint("/metrics");
    }

    internal static string RoleName(GatewayRole role) => role.ToString().ToLowerInvariant();
}
