using Gateway.Server;
using Gateway.Server.Auth;
using Gateway.Server.Config;
using Microsoft.Extensions.Options;

// --help and --version answer and exit without starting anything.
if (args.Any(a => a is "--help" or "-h" or "-?"))
{
    Console.Out.Write(HelpText.Render());
    return 0;
}

if (args.Any(a => a is "--version"))
{
    Console.Out.WriteLine($"chatgw {GatewayVersion.Current}");
    return 0;
}

// Three commands: run the server (default), mint a development token, or print / apply the Scylla schema.
if (args.Length > 0 && args[0] == "token")
{
    return TokenCommand.Run(args[1..]);
}

if (args.Length > 0 && args[0] == "schema")
{
    return await SchemaCommand.RunAsync(args[1..]).ConfigureAwait(false);
}

WebApplication app;
try
{
    app = GatewayHost.Build(args);
}
catch (OptionsValidationException e)
{
    // A setting to change, not a crash: one line per bad setting (naming it, its value and the rule), exit code 1.
    foreach (var failure in e.Failures)
    {
        Console.Error.WriteLine($"Gateway.Server: {failure}");
    }

    return 1;
}
catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
{
    // A key or certificate file that exists but cannot be read (permissions of a mounted secret, say) or parsed.
    Console.Error.WriteLine($"Gateway.Server: cannot read a configured file: {e.Message}");
    return 1;
}

var options = app.Services.GetRequiredService<IOptions<GatewayOptions>>().Value;
var role = GatewayHost.ParseRole(app.Configuration);
if (StartupErrors.BusyEndpoint(options, role) is { } busy)
{
    // A setting to change, not a crash: one line and exit code 1, no stack trace.
    Console.Error.WriteLine(busy);
    await app.DisposeAsync().ConfigureAwait(false);
    return 1;
}

// Captured now: RunAsync disposes the host (and its services) when start-up fails.
var started = false;
app.Lifetime.ApplicationStarted.Register(() => started = true);
try
{
    await app.RunAsync().ConfigureAwait(false);
}
catch (Exception e) when (StartupErrors.FromBindFailure(e, options, role) is { } line)
{
    // Another process took the port after the check above.
    Console.Error.WriteLine(line);
    return 1;
}
catch (OptionsValidationException e)
{
    // ValidateOnStart: options changed after Build's checks.
    foreach (var failure in e.Failures)
    {
        Console.Error.WriteLine($"Gateway.Server: {failure}");
    }

    return 1;
}
catch (Exception e) when (!started)
{
    // Start-up failed before serving (NATS unreachable, say): one line with the reason instead of an unhandled exception.
    Console.Error.WriteLine($"Gateway.Server: start-up failed: {e.Message}");
    return 1;
}

return 0;

/// <summary><c>token --tenant T --user U [--ttl-minutes N] [--data DIR]</c>: prints an HS256 development token signed
/// with the same key the server uses (configured, or the one in the data directory).</summary>
internal static class TokenCommand
{
    public static int Run(string[] args)
    {
        string? tenant = null, user = null;
        var ttl = 24 * 60.0;
        var rest = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--tenant" when i + 1 < args.Length:
                    tenant = args[++i];
                    break;
                case "--user" when i + 1 < args.Length:
                    user = args[++i];
                    break;
                case "--ttl-minutes" when i + 1 < args.Length:
                    ttl = double.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture);
                    break;
                case "--data" when i + 1 < args.Length:
                    rest.Add($"--Gateway:DataDirectory={args[++i]}");
                    break;
                default:
                    rest.Add(args[i]);
                    break;
            }
        }

        if (tenant is null || user is null)
        {
            Console.Error.WriteLine("usage: Gateway.Server token --tenant <tenantId> --user <userId> [--ttl-minutes 1440] [--data <dir>]");
            return 2;
        }

        var config = new ConfigurationBuilder().AddJsonFile("appsettings.json", optional: true).AddEnvironmentVariables().AddCommandLine([.. rest]).Build();
        var gateway = config.GetSection(GatewayOptions.Section).Get<GatewayOptions>() ?? new GatewayOptions();
        var auth = config.GetSection(AuthOptions.Section).Get<AuthOptions>() ?? new AuthOptions();
        var role = GatewayHost.ParseRole(config);
        if (AuthSecrets.SigningKey(auth) is null && (AuthSecrets.HasTokenKeys(auth) || !AuthSecrets.DevelopmentKeysAllowed(gateway, role)))
        {
            // The server would not generate a development key here either (AuthSecrets), so neither does this command.
            Console.Error.WriteLine("No HS256 signing key is configured (Gateway:Auth:SigningKey or SigningKeyFile): production tokens come from your identity provider.");
            return 1;
        }

        var authenticator = new JwtAuthenticator(Options.Create(auth), Options.Create(gateway));
        if (authenticator.SigningKey is null)
        {
            Console.Error.WriteLine("No HS256 signing key is configured: production tokens come from your identity provider.");
            return 1;
        }

        Console.WriteLine(JwtAuthenticator.Mint(authenticator.SigningKey, tenant, user, TimeSpan.FromMinutes(ttl), auth.TenantClaim));
        return 0;
    }
}
