using System.Net;
using System.Text.Json;
using Gateway.Domain.Ports;
using Gateway.Nats;
using Gateway.Server.Auth;
using Gateway.Server.Config;
using Gateway.Server.Connections;
using Gateway.Server.Fanout;
using Gateway.Server.Http;
using Gateway.Server.Sessions;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Options;

namespace Gateway.Server;

/// <summary>
/// Builds the embedded system: gateway + write service in one process, RocksDB store, in-process bus.
/// The only place that wires adapters to ports.
/// </summary>
public static partial class GatewayHost
{
    /// <summary>Builds the application from command-line arguments (<c>--Gateway:Name=value</c>), environment
    /// variables (<c>Gateway__Name</c>) and <c>appsettings.json</c>.</summary>
    /// <remarks>Shutdown order: the drain (<see cref="DrainCoordinator"/>: readiness 503, Drain frames, sessions served for
    /// the grace period, then closed with 1001) runs first, while Kestrel and the write service still work; then Kestrel
    /// stops (closing with 1001 anything left) and the container disposes singletons in reverse creation order — the
    /// write service (finishing queued commands), the bus, and the store last. The host's shutdown timeout is the drain
    /// grace plus 5 s.</remarks>
    public static WebApplication Build(string[] args)
    {
        // Content root = current directory: appsettings.json and the default data directory live where you run it.
        var builder = WebApplication.CreateSlimBuilder(args);
        ConfigureLogging(builder);

        var services = builder.Services;
        services.Configure<GatewayOptions>(builder.Configuration.GetSection(GatewayOptions.Section));
        services.Configure<AuthOptions>(builder.Configuration.GetSection(AuthOptions.Section));
        ValidateConfiguration(builder.Configuration, services);
        var options = builder.Configuration.GetSection(GatewayOptions.Section).Get<GatewayOptions>() ?? new GatewayOptions();

        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<JwtAuthenticator>();
        var role = ParseRole(builder.Configuration);
        services.AddSingleton(_ => new GatewayMetrics(RoleName(role)));
        AddTelemetry(builder, role);
        AddReadiness(services, role);
        AddRole(services, role, options, builder.Configuration);
        AddSessionServices(services);
        AddConnectionServices(services, options);
        var endpoints = AddListeners(builder, options, role);

        var app = builder.Build();
        MapEndpoints(app, endpoints, options);
        return app;
    }

    /// <summary>The role's adapters: embedded, writer or gateway (<see cref="GatewayRole"/>).</summary>
    private static void AddRole(IServiceCollection services, GatewayRole role, GatewayOptions options, IConfiguration configuration)
    {
        var nats = configuration.GetSection(NatsOptions.Section).Get<NatsOptions>() ?? new NatsOptions();
        switch (role)
        {
            case GatewayRole.All:
                AddEmbedded(services, options);
                break;
            case GatewayRole.Writer:
                AddWriter(services, options, nats, configuration.GetSection(StoreOptions.Section).Get<StoreOptions>() ?? new StoreOptions());
                break;
            case GatewayRole.Gateway:
                AddGateway(services, nats);
                break;
        }
    }

    /// <summary>What every session shares, over the role's adapters.</summary>
    private static void AddSessionServices(IServiceCollection services)
    {
        services.AddSingleton(sp => new SessionServices(
            sp.GetRequiredService<IWriteService>(),
            sp.GetRequiredService<IMessageHistory>(),
            sp.GetRequiredService<IMembership>(),
            sp.GetRequiredService<ChatRegistry>(),
            sp.GetRequiredService<IOptions<GatewayOptions>>().Value,
            sp.GetRequiredService<GatewayMetrics>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILoggerFactory>().CreateLogger("Gateway.Session"),
            sp.GetRequiredService<JwtAuthenticator>(),
            sp.GetRequiredService<UserLimits>()));
        services.AddSingleton(sp => new UserLimits(sp.GetRequiredService<IOptions<GatewayOptions>>().Value, sp.GetRequiredService<TimeProvider>()));
    }

    /// <summary>Connection admission, the drain, and the WebSocket connection handler.</summary>
    private static void AddConnectionServices(IServiceCollection services, GatewayOptions options)
    {
        // Binding failures (e.g. ?limit=abc) throw with a message that HttpErrors turns into a JSON 400, instead of an empty 400.
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        services.AddSingleton(sp => new ConnectionLimiter(
            sp.GetRequiredService<IOptions<GatewayOptions>>().Value, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(sp => new DrainCoordinator(
            sp.GetRequiredService<IOptions<GatewayOptions>>().Value, sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<DrainCoordinator>>()));
        services.AddHostedService(sp => sp.GetRequiredService<DrainCoordinator>());

        // The drain needs its grace, and the 1001 closes after it their close handshakes (5 s each at most, concurrently).
        services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(Math.Max(0, options.DrainGraceSeconds) + 5));
        services.AddSingleton<GatewayConnectionHandler>();
    }

    /// <summary>The listeners (WebSocket and HTTP; a writer has only HTTP), TLS on the WebSocket one when configured.</summary>
    private static GatewayEndpoints AddListeners(WebApplicationBuilder builder, GatewayOptions options, GatewayRole role)
    {
        var services = builder.Services;
        if (options.PreferInlineScheduling)
        {
            builder.WebHost.UseSockets(o => o.UnsafePreferInlineScheduling = true);
        }

        var endpoints = new GatewayEndpoints();
        services.AddSingleton(endpoints);
        var certificate = options.Tls.Enabled ? new TlsCertificateReloader(options.Tls, TimeProvider.System) : null;
        if (certificate is not null)
        {
            services.AddSingleton(certificate);
            services.AddHostedService(sp =>
            {
                certificate.Logger = sp.GetRequiredService<ILogger<TlsCertificateReloader>>();
                return certificate;
            });
        }

        endpoints.Tls = certificate is not null;
        builder.WebHost.ConfigureKestrel(k =>
        {
            // No HTTP body may be larger than the largest one an endpoint accepts (a send); each endpoint lowers it to
            // its own limit before reading (HttpApi).
            k.Limits.MaxRequestBodySize = HttpApi.SendBodyLimit(options);

            // The WebSocket listener speaks our own RFC 6455 implementation through a connection handler;
            // HTTP middleware never sees these connections.
            if (role == GatewayRole.Writer)
            {
                // A writer serves no clients: only the HTTP API (health, admin, history, BFF send).
                endpoints.Http = Listen(k, options.HttpEndpoint, static _ => { });
                return;
            }

            endpoints.WebSocket = Listen(k, options.WebSocketEndpoint, lo =>
            {
                if (certificate is not null)
                {
                    // TLS is connection middleware and must come before the handler, which then reads plaintext.
                    // HTTP/1.1 only: ALPN must not offer h2 to a client that is about to send an upgrade request.
                    lo.Protocols = HttpProtocols.Http1;
                    lo.UseHttps(new HttpsConnectionAdapterOptions
                    {
                        // Asked on every handshake: a reloaded certificate serves new connections, open ones keep theirs.
                        ServerCertificateSelector = (_, _) => certificate.Current,
                        HandshakeTimeout = TimeSpan.FromSeconds(options.HandshakeTimeoutSeconds),
                    });
                }

                lo.UseConnectionHandler<GatewayConnectionHandler>();
            });
            endpoints.Http = Listen(k, options.HttpEndpoint, static _ => { });
        });
        return endpoints;
    }

    /// <summary>The HTTP routes, and the start and stop hooks.</summary>
    private static void MapEndpoints(WebApplication app, GatewayEndpoints endpoints, GatewayOptions options)
    {
        HttpErrors.UseJsonErrors(app);
        HttpApi.Map(app);
        MapReadiness(app);
        MapTelemetry(app);
        app.Lifetime.ApplicationStarted.Register(() => endpoints.OnStarted(app, options));

        // SIGTERM raises ApplicationStopping before the host's StopAsync runs the drain (DrainCoordinator.StoppingAsync):
        // readiness flips and the Drain frames go out at the first moment either path is taken.
        var drain = app.Services.GetRequiredService<DrainCoordinator>();
        app.Lifetime.ApplicationStopping.Register(drain.BeginDrain);
    }

    private static ListenOptions Listen(KestrelServerOptions kestrel, string endpoint, Action<ListenOptions> configure)
    {
        ListenOptions? captured = null;
        kestrel.Listen(IPEndPoint.Parse(endpoint), lo =>
        {
            captured = lo;
            configure(lo);
        });
        return captured!;
    }
}

/// <summary>The endpoints the gateway actually listens on (ports resolved when configured as 0).</summary>
public sealed class GatewayEndpoints
{
    internal ListenOptions? WebSocket { get; set; }

    internal ListenOptions? Http { get; set; }

    /// <summary>Whether the WebSocket listener is TLS (<c>wss://</c>).</summary>
    internal bool Tls { get; set; }

    /// <summary>The WebSocket URL, e.g. <c>ws://127.0.0.1:8080/v1/ws</c> (<c>wss://</c> with TLS); null in the writer role.</summary>
    public Uri WebSocketUri { get; private set; } = null!;

    /// <summary>The HTTP API base URL.</summary>
    public Uri HttpUri { get; private set; } = null!;

    internal void OnStarted(WebApplication app, GatewayOptions options)
    {
        WebSocketUri = WebSocket is null ? null! : new Uri($"{(Tls ? "wss" : "ws")}://{WebSocket.IPEndPoint}{options.Path}");
        HttpUri = new Uri($"http://{Http!.IPEndPoint}");
        if (app.Services.GetService<StartupSummary>() is { } summary)
        {
            // The one line that says what this process is: enough to tell from a log which build, role and keys ran.
            app.Logger.LogInformation("chatgw {Version} started: role {Role}; WebSocket {Ws} ({Protocol}); HTTP {Http}; store {Store}; auth: {Auth}",
                GatewayVersion.Current, GatewayHost.RoleName(summary.Role), WebSocketUri?.ToString() ?? "none (writer)",
                Gateway.Protocol.ProtocolConstants.SubProtocol, HttpUri, summary.Store, summary.AuthMode);
            if (summary.DevelopmentKeys)
            {
                app.Logger.LogWarning("Development keys in use (generated in {Data} because Gateway:Auth configures none; allowed only for --role all on loopback endpoints): never expose this server; set real keys (--help)",
                    Path.GetFullPath(options.DataDirectory));
            }
        }
        if (options.PortsFile is { } file)
        {
            var json = JsonSerializer.Serialize(new Dictionary<string, string> { ["ws"] = WebSocketUri?.ToString() ?? "", ["http"] = HttpUri.ToString() });
            File.WriteAllText(file + ".tmp", json);
            File.Move(file + ".tmp", file, overwrite: true);
        }
    }
}
