using Gateway.Domain;
using Gateway.Domain.InProcess;
using Gateway.Domain.Ports;
using Gateway.Nats;
using Gateway.Server.Config;
using Gateway.Server.Fanout;
using Gateway.Storage.RocksDb;
using Gateway.Storage.Scylla;
using Microsoft.Extensions.Options;
using NATS.Client.Core;

namespace Gateway.Server;

/// <summary>What one process of the system does (<c>--role</c>).</summary>
public enum GatewayRole
{
    /// <summary>Everything in one process: gateway + write service, RocksDB, in-process bus (the embedded default).</summary>
    All,

    /// <summary>A stateless WebSocket gateway: commands and reads go to writers over NATS, live events come from JetStream.</summary>
    Gateway,

    /// <summary>A write service: commits to the JetStream log, projects it into its history store, serves reads.</summary>
    Writer,
}

public static partial class GatewayHost
{
    /// <summary>Parses <c>--role</c> (configuration key <c>role</c>; default <c>all</c>).</summary>
    internal static GatewayRole ParseRole(IConfiguration configuration)
    {
        var value = configuration["role"] ?? configuration["Gateway:Role"] ?? "all";
        return value.ToUpperInvariant() switch
        {
            "ALL" => GatewayRole.All,
            "GATEWAY" => GatewayRole.Gateway,
            "WRITER" => GatewayRole.Writer,
            _ => throw new OptionsValidationException("role", typeof(GatewayRole), [$"--role (Gateway:Role) '{value}' is not one of: all, gateway, writer"]),
        };
    }

    /// <summary>The embedded adapters: RocksDB store, in-process bus, the local write service (also the membership authority).</summary>
    private static void AddEmbedded(IServiceCollection services, GatewayOptions options)
    {
        services.AddSingleton<IChatStore>(_ => new RocksDbChatStore(Path.Combine(options.DataDirectory, "rocksdb")));
        services.AddSingleton<IMessageHistory>(sp => sp.GetRequiredService<IChatStore>());
        services.AddSingleton<InProcessEventBus>();
        services.AddSingleton<IEventBus>(sp => sp.GetRequiredService<InProcessEventBus>());
        services.AddSingleton(sp => new LocalWriteService(
            sp.GetRequiredService<IChatStore>(),
            sp.GetRequiredService<IEventBus>(),
            WriteOptions(options),
            sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<IWriteService>(sp => sp.GetRequiredService<LocalWriteService>());
        services.AddSingleton<IMembership>(sp => sp.GetRequiredService<LocalWriteService>());
        services.AddSingleton(sp => new ChatRegistry(sp.GetRequiredService<IEventBus>(), sp.GetRequiredService<GatewayMetrics>()));
    }

    /// <summary>The writer role: JetStream log + projector into the local RocksDB history, the CAS write service, and the
    /// request handlers gateways call.</summary>
    private static void AddWriter(IServiceCollection services, GatewayOptions options, NatsOptions nats, StoreOptions store)
    {
        AddNatsCore(services, nats);
        if (store.IsScylla)
        {
            // Opened when NatsRuntime starts the projector, before Kestrel listens: a cluster that cannot be reached, or a
            // keyspace without the schema, stops start-up with one line. Blocking here happens once, at start.
            services.AddSingleton<IChatStore>(sp => OpenScylla(store, sp));
        }
        else
        {
            services.AddSingleton<IChatStore>(_ => new RocksDbChatStore(Path.Combine(options.DataDirectory, "rocksdb")));
        }

        services.AddSingleton<IMessageHistory>(sp => sp.GetRequiredService<IChatStore>());
        services.AddSingleton(sp => new JetStreamLog(sp.GetRequiredService<INatsConnection>(), sp.GetRequiredService<Subjects>(), nats,
            sp.GetRequiredService<ILoggerFactory>().CreateLogger("Gateway.Nats.Log")));
        services.AddSingleton(sp => new Projector(sp.GetRequiredService<INatsConnection>(), (IProjectionStore)sp.GetRequiredService<IChatStore>(), sp.GetRequiredService<Subjects>(),
            nats.NodeId ?? Environment.MachineName, nats, sp.GetRequiredService<ILoggerFactory>().CreateLogger("Gateway.Nats.Projector")));
        services.AddSingleton(sp => new NatsWriteService(sp.GetRequiredService<JetStreamLog>(), sp.GetRequiredService<Projector>(), sp.GetRequiredService<IChatStore>(),
            WriteOptions(options), nats, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>().CreateLogger("Gateway.Nats.Writer")));
        services.AddSingleton<IWriteService>(sp => sp.GetRequiredService<NatsWriteService>());
        services.AddSingleton<IMembership>(sp => sp.GetRequiredService<NatsWriteService>());
        services.AddSingleton(sp => new WriterRpcServer(sp.GetRequiredService<INatsConnection>(), sp.GetRequiredService<NatsWriteService>(),
            sp.GetRequiredService<IMessageHistory>(), sp.GetRequiredService<ILoggerFactory>().CreateLogger("Gateway.Nats.Rpc")));
        services.AddSingleton(sp => new NatsRuntime((NatsConnection)sp.GetRequiredService<INatsConnection>(),
            new NatsRuntime.WriterParts(sp.GetRequiredService<JetStreamLog>(),
                new Lazy<Projector>(sp.GetRequiredService<Projector>), new Lazy<WriterRpcServer>(sp.GetRequiredService<WriterRpcServer>)),
            bus: null, sp.GetRequiredService<ILogger<NatsRuntime>>()));
    }

    /// <summary>The gateway role: no durable state; writers over request/reply, live events from the streams' republish.</summary>
    private static void AddGateway(IServiceCollection services, NatsOptions nats)
    {
        AddNatsCore(services, nats);
        services.AddSingleton(sp => new RemoteWriter(sp.GetRequiredService<INatsConnection>(), nats));
        services.AddSingleton<IWriteService>(sp => sp.GetRequiredService<RemoteWriter>());
        services.AddSingleton<IMessageHistory>(sp => sp.GetRequiredService<RemoteWriter>());
        services.AddSingleton<IMembership>(sp => sp.GetRequiredService<RemoteWriter>());
        services.AddSingleton(sp => new NatsGatewayBus(sp.GetRequiredService<INatsConnection>(), sp.GetRequiredService<Subjects>(),
            sp.GetRequiredService<ILoggerFactory>().CreateLogger("Gateway.Nats.Bus"), TimeSpan.FromMilliseconds(nats.CommandDeadlineMs)));
        services.AddSingleton<IEventBus>(sp => sp.GetRequiredService<NatsGatewayBus>());
        services.AddSingleton(sp =>
        {
            var bus = sp.GetRequiredService<NatsGatewayBus>();
            var registry = new ChatRegistry(bus, sp.GetRequiredService<GatewayMetrics>(), bus) { TypingRelay = bus.PublishTyping };
            bus.OnReconnected += registry.Resync;
            bus.TypingReceived += registry.DeliverTyping;
            return registry;
        });
        services.AddSingleton(sp => new NatsRuntime((NatsConnection)sp.GetRequiredService<INatsConnection>(), writer: null,
            sp.GetRequiredService<NatsGatewayBus>(), sp.GetRequiredService<ILogger<NatsRuntime>>()));
    }

    private static ScyllaChatStore OpenScylla(StoreOptions store, IServiceProvider services)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            return ScyllaChatStore.OpenAsync(store, services.GetRequiredService<ILoggerFactory>(), services.GetRequiredService<TimeProvider>(), timeout.Token)
                .GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is Gateway.Cql.CqlException or InvalidOperationException or OperationCanceledException)
        {
            throw new InvalidOperationException($"cannot open the Scylla store at {store.ContactPoints} (Store:ContactPoints), keyspace {store.Keyspace}: {e.Message}", e);
        }
    }

    private static void AddNatsCore(IServiceCollection services, NatsOptions nats)
    {
        services.AddSingleton(new Subjects(nats.Partitions, nats.PartitionsPerStream));
        services.AddSingleton<INatsConnection>(sp => new NatsConnection(ConnectionOptions(nats, sp.GetRequiredService<ILoggerFactory>())));
        services.AddHostedService(sp => sp.GetRequiredService<NatsRuntime>()); // registered by the role: its parts differ
    }

    private static NatsOpts ConnectionOptions(NatsOptions nats, ILoggerFactory loggerFactory)
    {
        var tls = nats.Tls || nats.TlsCaFile is not null || nats.TlsCertFile is not null || nats.Url!.Contains("tls://", StringComparison.OrdinalIgnoreCase);
        return NatsOpts.Default with
        {
            Url = nats.Url!,
            Name = "chatgw-" + (nats.NodeId ?? Environment.MachineName),
            LoggerFactory = loggerFactory,
            AuthOpts = NatsAuthOpts.Default with { Username = nats.User, Password = nats.Password, Token = nats.Token },
            TlsOpts = tls
                ? NatsTlsOpts.Default with { Mode = TlsMode.Require, CaFile = nats.TlsCaFile, CertFile = nats.TlsCertFile, KeyFile = nats.TlsKeyFile }
                : NatsTlsOpts.Default,
            RequestTimeout = TimeSpan.FromMilliseconds(nats.RequestTimeoutMs),

            // Keep trying forever: a pod outlives a broker restart; commands meanwhile fail with Unavailable.
            MaxReconnectRetry = -1,
        };
    }

    private static WriteServiceOptions WriteOptions(GatewayOptions options) =>
        new() { MaxContentBytes = options.MaxContentBytes, MaxExpiresInMs = options.MaxExpirySeconds * 1000 };
}
