using System.Globalization;
using Gateway.LoadGen.Reporting;
using Gateway.LoadGen.Scenarios;
using Gateway.LoadGen.Targets;
using Gateway.LoadGen.Workers;

namespace Gateway.LoadGen;

/// <summary>Entry point (also called in-process by the tests).</summary>
public static class LoadGenApp
{
    private const string Usage = """
        usage:
          Gateway.LoadGen <idle|broadcast|pairs|connect|soak> [options]   run one scenario
          Gateway.LoadGen chaos [--topology distributed|cluster|embedded] [options]   kill -9 soak with a verdict
          Gateway.LoadGen summarize --out FILE.md DIR...                 medians and ratios over many runs
          Gateway.LoadGen worker --plan FILE                              (internal: a worker process)
        see tools/Gateway.LoadGen/README.md for every option.
        """;

    /// <summary>Runs one command; returns the process exit code (0 ok, 1 failed verdict or error, 2 usage).</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length == 0 || args[0] is "-h" or "--help")
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }

        if (args[0] == "worker")
        {
            return await Worker.MainAsync(args[1..]).ConfigureAwait(false);
        }

        CommandLine cli;
        try
        {
            cli = new CommandLine(args[1..]);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }

        if (args[0] == "summarize")
        {
            return Summary.Run(cli);
        }

        if (args[0] == "chaos")
        {
            return await Chaos.ChaosRunner.RunAsync(cli).ConfigureAwait(false);
        }

        return await RunScenarioAsync(args[0], cli).ConfigureAwait(false);
    }

    private static async Task<int> RunScenarioAsync(string scenario, CommandLine cli)
    {
        ServerLauncher? server = null;
        try
        {
            TargetSettings settings;
            int? serverPid = cli.OptionalInt("--server-pid");
            var serverCpu = cli.OptionalInt("--server-cpu");
            var gc = cli.Get("--gc");
            if (cli.Get("--server") is { } serverPath)
            {
                server = await ServerLauncher.StartAsync(serverPath, serverCpu, cli.All("--server-arg"), gc).ConfigureAwait(false);
                settings = server.Settings with { Tenant = cli.Get("--tenant", "load") };
                serverPid = server.Pid;
            }
            else
            {
                settings = new TargetSettings
                {
                    Name = cli.Get("--target", "gateway"),
                    Endpoint = new Uri(cli.Get("--endpoint", "ws://127.0.0.1:8080/v1/ws")),
                    HttpEndpoint = cli.Get("--http") is { } h ? new Uri(h) : null,
                    AdminKey = cli.Get("--admin-key") ?? (cli.Get("--admin-key-file") is { } f ? (await File.ReadAllTextAsync(f).ConfigureAwait(false)).Trim() : null),
                    SigningKey = cli.Get("--signing-key"),
                    Token = cli.Get("--token"),
                    Tenant = cli.Get("--tenant", "load"),
                };
            }

            var report = new RunReport
            {
                Scenario = scenario,
                Target = settings.Name,
                Label = cli.Get("--label"),
                StartedAt = DateTimeOffset.UtcNow,
                Environment =
                {
                    ["machine"] = $"{MachineCpus()} CPUs, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}",
                    ["loadgenCpus"] = Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture),
                    ["serverPid"] = serverPid?.ToString(CultureInfo.InvariantCulture) ?? "unknown",
                    ["serverCpu"] = serverCpu?.ToString(CultureInfo.InvariantCulture) ?? cli.Get("--server-cpu-note", "not pinned by the tool"),
                    ["serverGc"] = GcMode(settings.Name, gc, serverCpu, cli.Get("--server-gc-note")),
                    ["auth"] = AuthMode(settings),
                },
            };
            var coordinator = new Coordinator(cli, settings, serverPid, report);
            try
            {
                await coordinator.RunAsync(scenario).ConfigureAwait(false);
            }
            finally
            {
                await coordinator.DisposeAsync().ConfigureAwait(false);
            }

            var outDir = cli.Get("--out", Path.Combine("bench", "results", "loadgen-" + DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)));
            var files = ReportWriter.Write(report, outDir);
            Console.Error.WriteLine($"[{scenario} {settings.Name}] verdict {report.Verdict}; " +
                string.Join(", ", report.Metrics.Select(m => string.Create(CultureInfo.InvariantCulture, $"{m.Key}={m.Value:0.###}"))));
            foreach (var f in files)
            {
                Console.WriteLine(f);
            }

            return report.Verdict == "fail" ? 1 : 0;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FileNotFoundException or HttpRequestException or FormatException)
        {
            Console.Error.WriteLine($"loadgen: {e.Message}");
            return 1;
        }
        finally
        {
            if (server is not null)
            {
                await server.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>CPUs of the machine, not of this process (which taskset may have pinned to one).</summary>
    private static int MachineCpus()
    {
        try
        {
            return Math.Max(1, File.ReadLines("/proc/cpuinfo").Count(l => l.StartsWith("processor", StringComparison.Ordinal)));
        }
        catch (IOException)
        {
            return Environment.ProcessorCount;
        }
    }

    /// <summary>How connections authenticate, so a connect-storm figure says what it paid for.</summary>
    private static string AuthMode(TargetSettings s) =>
        s.Name == "gateway" ? "JWT HS256 (signature + lifetime)"
        : s.SigningKey is not null ? "JWT HS256 (signature + lifetime)"
        : s.Token is not null ? "shared token (string compare)"
        : "none";

    /// <summary>
    /// What we know of the server's GC mode. Gateway.Server is a Web SDK app (Server GC by default), and the
    /// runtime falls back to workstation GC when the process may use only one CPU (taskset -c N).
    /// </summary>
    private static string GcMode(string target, string? gc, int? cpu, string? note)
    {
        if (note is not null)
        {
            return note;
        }

        if (target != "gateway")
        {
            return "n/a (not a .NET server, or unknown)";
        }

        return gc switch
        {
            "server" when cpu is not null => "server requested; one CPU ⇒ the runtime uses workstation",
            "server" => "server (DOTNET_gcServer=1)",
            "workstation" => "workstation (DOTNET_gcServer=0)",
            _ when cpu is not null => "workstation (Server GC default falls back on one CPU)",
            _ => "server (Web SDK default), if the tool started it; otherwise unknown",
        };
    }
}
