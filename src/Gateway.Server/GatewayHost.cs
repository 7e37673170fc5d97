using System.Net;
using System.Text.Json;
using Gateway.Domain;
using Gateway.Domain.InProcess;
using Gateway.Domain.Ports;
using Gateway.Server.Auth;
using Gateway.Server.Fanout;
using Gateway.Server.Http;
using Gateway.Server.Sessions;
using Gateway.Storage.RocksDb;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace Gateway.Server;

/// <summary>
/// Builds the embedded system: gateway + write service in one process, RocksDB store, in-process bus.
/// The only place that wires adapters to ports.
/// </summary>
public static class GatewayHost
{
    /// <summary>Builds the application from command-line arguments (<c>--Gateway:Name=value</c>), environment
    /// variables (<c>Gateway__Name</c>) and <c>appsettings.json</c>.</summary>
    /// <remarks>Shutdown order: Kestrel asks every WebSocket to close (1001) and stops; then the container disposes
    /// singletons in reverse creation order — the write service (finishing queued commands), the bus, and the
    /// store last.</remarks>
    public static WebApplication Build(string[] args)
    {
        // Content root = current directory: appsettings.json and the default data directory live where you run it.
        var builder = WebApplication.CreateSlimBuilder(args);
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
        });

        var services = builder.Services;
        services.Configure<GatewayOptions>(builder.Configuration.GetSection(GatewayOptions.Section));
        services.Configure<AuthOptions>(builder.Configuration.GetSection(AuthOptions.Section));
        var options = builder.Configuration.GetSection(GatewayOptions.Section).Get<GatewayOptions>() ?? new GatewayOptions();
        Validate(options);

        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<GatewayMetrics>();
        services.AddSingleton<JwtAuthenticator>();
        services.AddSingleton<IChatStore>(_ => new RocksDbChatStore(Path.Combine(options.DataDirectory, "rocksdb")));
        services.AddSingleton<IMessageHistory>(sp => sp.GetRequiredService<IChatStore>());
        services.AddSingleton<InProcessEventBus>();
        services.AddSingleton<IEventBus>(sp => sp.GetRequiredService<InProcessEventBus>());
        services.AddSingleton(sp => new LocalWriteService(
            sp.GetRequiredService<IChatStore>(),
            sp.GetRequiredService<IEventBus>(),
            new WriteServiceOptions { MaxContentBytes = options.MaxContentBytes, MaxExpiresInMs = options.MaxExpirySeconds * 1000 },
            sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<IWriteService>(sp => sp.GetRequiredService<LocalWriteService>());
        services.AddSingleton<IMembership>(sp => sp.GetRequiredService<LocalWriteService>());
        services.AddSingleton<ChatRegistry>();
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
            new UserLimits(sp.GetRequiredService<IOptions<GatewayOptions>>().Value, sp.GetRequiredService<TimeProvider>())));
        services.AddSingleton<GatewayConnectionHandler>();

        var endpoints = new GatewayEndpoints();
        services.AddSingleton(endpoints);
        builder.WebHost.ConfigureKestrel(k =>
        {
            // The WebSocket listener speaks our own RFC 6455 implementation through a connection handler;
            // HTTP middleware never sees these connections.
            endpoints.WebSocket = Listen(k, options.WebSocketEndpoint, lo => lo.UseConnectionHandler<GatewayConnectionHandler>());
            endpoints.Http = Listen(k, options.HttpEndpoint, static _ => { });
        });

        var app = builder.Build();
        HttpApi.Map(app);
        app.Lifetime.ApplicationStarted.Register(() => endpoints.OnStarted(app, options));
        return app;
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

    private static void Validate(GatewayOptions o)
    {
        var errors = new List<string>();
        if (!IPEndPoint.TryParse(o.WebSocketEndpoint, out _))
        {
            errors.Add($"Gateway:WebSocketEndpoint '{o.WebSocketEndpoint}' is not host:port");
        }

        if (!IPEndPoint.TryParse(o.HttpEndpoint, out _))
        {
            errors.Add($"Gateway:HttpEndpoint '{o.HttpEndpoint}' is not host:port");
        }

        if (!o.Path.StartsWith('/'))
        {
            errors.Add("Gateway:Path must start with '/'");
        }

        if (o.MaxContentBytes <= 0 || o.MaxMessageBytes < o.MaxContentBytes + 1024)
        {
            errors.Add("Gateway:MaxMessageBytes must exceed Gateway:MaxContentBytes by at least 1024 bytes of frame overhead");
        }

        if (o.MaxInFlightSends <= 0 || o.MaxOutboundFrames <= 0 || o.MaxOutboundBytes <= 0 || o.CatchUpPageSize <= 0)
        {
            errors.Add("Gateway limits must be positive");
        }

        if (errors.Count > 0)
        {
            throw new OptionsValidationException(GatewayOptions.Section, typeof(GatewayOptions), errors);
        }
    }
}

/// <summary>The endpoints the gateway actually listens on (ports resolved when configured as 0).</summary>
public sealed class GatewayEndpoints
{
    internal ListenOptions? WebSocket { get; set; }

    internal ListenOptions? Http { get; set; }

    /// <summary>The WebSocket URL, e.g. <c>ws://127.0.0.1:8080/v1/ws</c>.</summary>
    public Uri WebSocketUri { get; private set; } = null!;

    /// <summary>The HTTP API base URL.</summary>
    public Uri HttpUri { get; private set; } = null!;

    internal void OnStarted(WebApplication app, GatewayOptions options)
    {
        WebSocketUri = new Uri($"ws://{WebSocket!.IPEndPoint}{options.Path}");
        HttpUri = new Uri($"http://{Http!.IPEndPoint}");
        app.Logger.LogInformation("Gateway listening: {Ws} (WebSocket, {Protocol}), {Http} (HTTP API); data in {Data}",
            WebSocketUri, Gateway.Protocol.ProtocolConstants.SubProtocol, HttpUri, Path.GetFullPath(options.DataDirectory));
        if (options.PortsFile is { } file)
        {
            var json = JsonSerializer.Serialize(new Dictionary<string, string> { ["ws"] = WebSocketUri.ToString(), ["http"] = HttpUri.ToString() });
            File.WriteAllText(file + ".tmp", json);
            File.Move(file + ".tmp", file, overwrite: true);
        }
    }
}
