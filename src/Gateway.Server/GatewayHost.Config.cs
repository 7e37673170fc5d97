using System.Reflection;
using Gateway.Nats;
using Gateway.Server.Auth;
using Gateway.Server.Config;
using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.Configuration.Memory;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace Gateway.Server;

public static partial class GatewayHost
{
    /// <summary>
    /// Logging defaults: one line per entry with a UTC ISO-8601 timestamp, and no per-request lines from ASP.NET Core
    /// (routing, hosting diagnostics, Kestrel), so health probes write nothing, not even a failing readiness probe. The same values are in the
    /// <c>appsettings.json</c> shipped next to the binary, where operators see and edit them; these are the floor that
    /// holds however the server is started (tests hosting it in process, a binary copied without its json). JSON logs:
    /// <c>--Logging:Console:FormatterName=json</c> (or <c>Logging__Console__FormatterName=json</c>).
    /// </summary>
    internal static readonly Dictionary<string, string?> LoggingDefaults = new(StringComparer.OrdinalIgnoreCase)
    {
        ["Logging:LogLevel:Default"] = "Information",
        ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
        ["Logging:LogLevel:Microsoft.Hosting.Lifetime"] = "Warning",

        // A failing readiness check logs an Error line per check on every probe (a kubelet probes every few seconds);
        // the cause is logged once where it happens (e.g. the NATS disconnect) and /readyz names the failing check.
        ["Logging:LogLevel:Microsoft.Extensions.Diagnostics.HealthChecks"] = "Critical",
        ["Logging:Console:FormatterName"] = "simple",
        ["Logging:Console:FormatterOptions:SingleLine"] = "true",
        ["Logging:Console:FormatterOptions:IncludeScopes"] = "false",
        ["Logging:Console:FormatterOptions:UseUtcTimestamp"] = "true",
        ["Logging:Console:FormatterOptions:TimestampFormat"] = "yyyy-MM-dd'T'HH:mm:ss.fff'Z' ",
    };

    /// <summary>
    /// Configuration sources below the ones <c>CreateSlimBuilder</c> adds (appsettings.json of the working directory,
    /// environment, command line): <see cref="LoggingDefaults"/> lowest, then the <c>appsettings.json</c> next to the
    /// binary. The working directory is the content root (the README's <c>./data</c> and <c>appsettings.json</c> live where
    /// you run it), so without the second source the shipped file would be found only when started from the binary's folder.
    /// </summary>
    private static void ConfigureLogging(WebApplicationBuilder builder)
    {
        var sources = builder.Configuration.Sources;
        sources.Insert(0, new MemoryConfigurationSource { InitialData = LoggingDefaults });
        var baseDirectory = AppContext.BaseDirectory;
        if (!string.Equals(Path.GetFullPath(baseDirectory).TrimEnd('/'), Path.GetFullPath(builder.Environment.ContentRootPath).TrimEnd('/'), StringComparison.Ordinal)
            && File.Exists(Path.Combine(baseDirectory, "appsettings.json")))
        {
            sources.Insert(1, new JsonConfigurationSource
            {
                Path = "appsettings.json",
                Optional = true,
                ReloadOnChange = false,
                FileProvider = new PhysicalFileProvider(baseDirectory),
            });
        }

        // CreateSlimBuilder wires the simple formatter in code, which wins over Logging:Console:FormatterName. AddConsole
        // registers every built-in formatter (simple, json, systemd); the name then comes from configuration again.
        builder.Logging.AddConsole();
        builder.Services.AddOptions<ConsoleLoggerOptions>().Configure<IConfiguration>((o, c) =>
            o.FormatterName = c["Logging:Console:FormatterName"] is { Length: > 0 } name ? name : ConsoleFormatterNames.Simple);

        // One format string serves both formatters; the simple one needs the trailing space before the level, JSON does not.
        builder.Services.PostConfigure<JsonConsoleFormatterOptions>(o => o.TimestampFormat = o.TimestampFormat?.TrimEnd());
    }

    /// <summary>
    /// Checks every setting before anything is built: keys under our sections that are no setting, values that do not
    /// parse, every option's rules (<see cref="GatewayOptionsValidator"/>, <see cref="AuthOptionsValidator"/>,
    /// <see cref="NatsOptionsValidator"/> in the distributed roles) and the auth rule (<see cref="AuthSecrets"/>). Throws
    /// one <see cref="OptionsValidationException"/> with a message per problem (Program prints each as one line, exit
    /// code 1). Registers the validators with <c>ValidateOnStart</c> too, for options changed after this point.
    /// </summary>
    private static void ValidateConfiguration(IConfiguration configuration, IServiceCollection services)
    {
        var errors = new List<string>();
        ConfigurationChecker.Check(configuration, errors);
        var role = GatewayRole.All;
        try
        {
            role = ParseRole(configuration);
        }
        catch (OptionsValidationException e)
        {
            errors.AddRange(e.Failures);
        }

        if (errors.Count > 0)
        {
            // Binding now would throw on the values that do not parse.
            throw new OptionsValidationException(GatewayOptions.Section, typeof(GatewayOptions), errors);
        }

        var gateway = configuration.GetSection(GatewayOptions.Section).Get<GatewayOptions>() ?? new GatewayOptions();
        var auth = configuration.GetSection(AuthOptions.Section).Get<AuthOptions>() ?? new AuthOptions();
        var nats = configuration.GetSection(NatsOptions.Section).Get<NatsOptions>() ?? new NatsOptions();
        var store = configuration.GetSection(StoreOptions.Section).Get<StoreOptions>() ?? new StoreOptions();
        errors.AddRange(new GatewayOptionsValidator().Validate(null, gateway).Failures ?? []);
        errors.AddRange(new StoreOptionsValidator(role).Validate(null, store).Failures ?? []);
        errors.AddRange(new AuthOptionsValidator().Validate(null, auth).Failures ?? []);
        if (role != GatewayRole.All)
        {
            errors.AddRange(new NatsOptionsValidator().Validate(null, nats).Failures ?? []);
        }

        if (errors.Count == 0)
        {
            errors.AddRange(AuthSecrets.Refusals(auth, gateway, role));
        }

        if (errors.Count > 0)
        {
            throw new OptionsValidationException(GatewayOptions.Section, typeof(GatewayOptions), errors);
        }

        services.AddSingleton<IValidateOptions<GatewayOptions>, GatewayOptionsValidator>();
        services.AddSingleton<IValidateOptions<AuthOptions>, AuthOptionsValidator>();
        services.AddOptions<GatewayOptions>().ValidateOnStart();
        services.AddOptions<AuthOptions>().ValidateOnStart();
        services.AddSingleton(new StartupSummary(role, gateway, auth, nats, store));
        services.AddHostedService<RemoteSigningKeysService>();
    }
}

/// <summary>What the start-up line reports: role, store, auth mode and where the keys come from.</summary>
internal sealed record StartupSummary(GatewayRole Role, GatewayOptions Gateway, AuthOptions Auth, NatsOptions Nats, StoreOptions StoreSettings)
{
    public bool DevelopmentKeys => !AuthSecrets.HasTokenKeys(Auth) || !AuthSecrets.HasAdminKey(Auth);

    public string Store => Role switch
    {
        GatewayRole.All => $"RocksDB {Path.Combine(Path.GetFullPath(Gateway.DataDirectory), "rocksdb")}",
        GatewayRole.Writer when StoreSettings.IsScylla => $"JetStream log at {Nats.Url} (replicas {Nats.Replicas}), shared Scylla projection in keyspace {StoreSettings.Keyspace} at {StoreSettings.ContactPoints}",
        GatewayRole.Writer => $"JetStream log at {Nats.Url} (replicas {Nats.Replicas}), RocksDB projection {Path.Combine(Path.GetFullPath(Gateway.DataDirectory), "rocksdb")}",
        _ => $"none (writers over NATS at {Nats.Url})",
    };

    public string AuthMode => AuthSecrets.Describe(Auth, Gateway);
}

/// <summary>The build's version: the assembly's informational version (with the source revision when the SDK knows it).</summary>
public static class GatewayVersion
{
    /// <summary>E.g. <c>1.0.0+3f2c1ab</c>.</summary>
    public static string Current { get; } =
        typeof(GatewayVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(GatewayVersion).Assembly.GetName().Version?.ToString() ?? "unknown";
}
