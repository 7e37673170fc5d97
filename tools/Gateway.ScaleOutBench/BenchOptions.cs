using System.Globalization;
using Gateway.Tools.Common;

namespace Gateway.ScaleOutBench;

/// <summary>Command-line settings (<c>--name value</c> or <c>--name=value</c>); <see cref="Usage"/> lists them.</summary>
internal sealed class BenchOptions
{
    public const string Usage = """
        Gateway.ScaleOutBench: distributed (nats-server + writer + 2 gateways) vs embedded (--role all), interleaved.

          --runs N                 runs per setup, interleaved d e d e ... (default 3)
          --latency-rate R         open-loop sends per second in the latency test (default 200)
          --latency-seconds S      measured seconds of the latency test (default 10)
          --seconds S              measured seconds of each throughput test (default 10)
          --warmup-seconds S       unmeasured lead-in of every test (default 2)
          --one-chat-senders N     senders into the one chat (default 8)
          --one-chat-in-flight N   unacknowledged sends per sender, one chat (default 8; the server allows 64)
          --chats N                chats in the many-chats test, one sender each (default 64)
          --many-in-flight N       unacknowledged sends per sender, many chats (default 4)
          --size BYTES             message content size (default 100; at least 28)
          --server-cpus LIST       pin every server process (and nats-server) with taskset -c LIST (default: no pinning)
          --no-probe               skip the NATS component probe in the distributed runs
          --server PATH            Gateway.Server.dll (default: src/Gateway.Server/bin/Release/net10.0)
          --nats-server PATH       nats-server binary (default /usr/sbin/nats-server, else PATH)
          --out PATH               results file (default bench/results/scaleout-<yyyy-MM-dd>.md)
          --quick                  1 run each, 3 s tests, 1 s warm-up: checks the pipeline end to end
        """;

    public int Runs { get; private set; } = 3;

    public double LatencyRate { get; private set; } = 200;

    public double LatencySeconds { get; private set; } = 10;

    public double Seconds { get; private set; } = 10;

    public double WarmupSeconds { get; private set; } = 2;

    public int OneChatSenders { get; private set; } = 8;

    public int OneChatInFlight { get; private set; } = 8;

    public int Chats { get; private set; } = 64;

    public int ManyInFlight { get; private set; } = 4;

    public int Size { get; private set; } = 100;

    public string? ServerCpus { get; private set; }

    public bool Probe { get; private set; } = true;

    public bool Quick { get; private set; }

    public string ServerDll { get; private set; } = "";

    public string NatsServer { get; private set; } = File.Exists("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server";

    public string Dotnet { get; private set; } = "dotnet";

    public string Out { get; private set; } = "";

    public string RepositoryRoot { get; private set; } = "";

    /// <summary>The command line as given, for the report.</summary>
    public string CommandLine { get; private set; } = "";

    /// <summary>Parses the arguments; throws <see cref="ArgumentException"/> with a message for the user.</summary>
    public static BenchOptions Parse(string[] args)
    {
        var o = new BenchOptions { CommandLine = string.Join(' ', args) };
        string? server = null;
        string? output = null;
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            string? inline = null;
            if (name.Contains('=', StringComparison.Ordinal))
            {
                inline = name[(name.IndexOf('=', StringComparison.Ordinal) + 1)..];
                name = name[..name.IndexOf('=', StringComparison.Ordinal)];
            }

            string Value() => inline ?? (i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{name} needs a value"));
            int Int() => int.Parse(Value(), CultureInfo.InvariantCulture);
            double Dbl() => double.Parse(Value(), CultureInfo.InvariantCulture);
            switch (name)
            {
                case "--runs": o.Runs = Int(); break;
                case "--latency-rate": o.LatencyRate = Dbl(); break;
                case "--latency-seconds": o.LatencySeconds = Dbl(); break;
                case "--seconds": o.Seconds = Dbl(); break;
                case "--warmup-seconds": o.WarmupSeconds = Dbl(); break;
                case "--one-chat-senders": o.OneChatSenders = Int(); break;
                case "--one-chat-in-flight": o.OneChatInFlight = Int(); break;
                case "--chats": o.Chats = Int(); break;
                case "--many-in-flight": o.ManyInFlight = Int(); break;
                case "--size": o.Size = Int(); break;
                case "--server-cpus": o.ServerCpus = Value(); break;
                case "--no-probe": o.Probe = false; break;
                case "--server": server = Value(); break;
                case "--nats-server": o.NatsServer = Value(); break;
                case "--out": output = Value(); break;
                case "--quick":
                    o.Quick = true;
                    o.Runs = 1;
                    o.LatencySeconds = o.Seconds = 3;
                    o.WarmupSeconds = 1;
                    break;
                default: throw new ArgumentException($"unknown option {name}");
            }
        }

        if (o.Runs < 1 || o.LatencyRate <= 0 || o.LatencySeconds <= 0 || o.Seconds <= 0 || o.WarmupSeconds < 0
            || o.OneChatSenders < 1 || o.Chats < 1 || o.OneChatInFlight is < 1 or > 64 || o.ManyInFlight is < 1 or > 64 || o.Size < Payload.TimedHeaderSize)
        {
            throw new ArgumentException("an option is out of range (in-flight 1..64, size >= 28, counts >= 1, durations > 0)");
        }

        o.RepositoryRoot = FindRepositoryRoot();
        o.ServerDll = Path.GetFullPath(server ?? Path.Combine(o.RepositoryRoot, "src", "Gateway.Server", "bin", "Release", "net10.0", "Gateway.Server.dll"));
        if (!File.Exists(o.ServerDll))
        {
            throw new ArgumentException($"{o.ServerDll} not found: run `dotnet build -c Release src/Gateway.Server` first, or pass --server");
        }

        o.Out = Path.GetFullPath(output ?? Path.Combine(o.RepositoryRoot, "bench", "results",
            $"scaleout-{DateTime.Now.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}{(o.Quick ? "-quick" : "")}.md"));
        return o;
    }

    private static string FindRepositoryRoot()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Gateway.sln")))
                {
                    return dir.FullName;
                }
            }
        }

        throw new ArgumentException("repository root (Gateway.sln) not found: run from inside the repository");
    }
}
