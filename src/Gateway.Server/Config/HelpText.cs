using System.Text;

namespace Gateway.Server.Config;

/// <summary><c>--help</c>: usage, how settings are given, and every setting with its default and description, generated
/// from the options types (<see cref="SettingsSchema"/>) so it cannot fall behind them.</summary>
internal static class HelpText
{
    public static string Render()
    {
        var text = new StringBuilder();
        text.AppendLine($"chatgw {GatewayVersion.Current}: realtime WebSocket delivery for a messenger.");
        text.AppendLine();
        text.AppendLine("Usage:");
        text.AppendLine("  Gateway.Server [--role all|gateway|writer] [--Section:Name=value ...]   run the server (default role: all)");
        text.AppendLine("  Gateway.Server token --tenant <t> --user <u> [--ttl-minutes 1440] [--data <dir>]   print a development token");
        text.AppendLine("  Gateway.Server --help | --version");
        text.AppendLine();
        text.AppendLine("Settings, lowest priority first: built-in defaults, appsettings.json next to the binary, appsettings.json in the");
        text.AppendLine("working directory, environment variables (Gateway__Name, Gateway__Auth__Name, Nats__Name; ':' becomes '__'),");
        text.AppendLine("command line (--Gateway:Name=value). Secrets belong in environment variables or files (SigningKeyFile,");
        text.AppendLine("AdminKeyFile), not on the command line. A bad or unknown setting stops start-up with one line naming it (exit 1).");
        text.AppendLine();
        text.AppendLine("Auth: without any Gateway:Auth key, development keys are generated in the data directory, and only for");
        text.AppendLine("--role all with both listeners on loopback addresses; every other set-up must configure token keys");
        text.AppendLine("(SigningKey/SigningKeyFile, PublicKeyFiles, JwksFile, JwksUrl or Authority) and AdminKey/AdminKeyFile.");
        text.AppendLine();
        text.AppendLine("Logs: --Logging:Console:FormatterName=json for JSON lines; --Logging:LogLevel:Default=Warning for fewer.");
        text.AppendLine();
        var rows = SettingsSchema.All();
        var nameWidth = rows.Max(r => r.Path.Length);
        var defaultWidth = Math.Min(24, rows.Max(r => r.Default.Length));
        text.AppendLine($"{"Setting".PadRight(nameWidth)}  {"Default".PadRight(defaultWidth)}  Description");
        foreach (var row in rows)
        {
            text.AppendLine($"{row.Path.PadRight(nameWidth)}  {row.Default.PadRight(defaultWidth)}  {row.Description}");
        }

        return text.ToString();
    }
}
