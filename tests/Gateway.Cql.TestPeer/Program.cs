using System.Globalization;
using Gateway.Cql.TestPeer;

// The test peer as a process of its own, so that a chaos soak can kill every other component while the "database"
// keeps its (in-memory) data: Gateway.Cql.TestPeer --port P [--nodes 3] [--ready-file F]. Writes the contact points to
// the ready file once every node listens, and runs until it is killed or stdin closes.
var port = 0;
var nodes = 1;
string? readyFile = null;
for (var i = 0; i + 1 < args.Length; i += 2)
{
    switch (args[i])
    {
        case "--port":
            port = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            break;
        case "--nodes":
            nodes = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            break;
        case "--ready-file":
            readyFile = args[i + 1];
            break;
        default:
            Console.Error.WriteLine("usage: Gateway.Cql.TestPeer --port P [--nodes N] [--ready-file F]");
            return 2;
    }
}

await using var cluster = await CqlTestCluster.StartAsync(new CqlTestClusterOptions { Port = port, Nodes = nodes });
var points = string.Join(',', cluster.ContactPoints);
Console.WriteLine($"CQL test peer (a test double, not Scylla) listening: {points}");
if (readyFile is not null)
{
    await File.WriteAllTextAsync(readyFile + ".tmp", points);
    File.Move(readyFile + ".tmp", readyFile, overwrite: true);
}

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};
AppDomain.CurrentDomain.ProcessExit += (_, _) => stop.Cancel();
try
{
    await Task.Delay(Timeout.Infinite, stop.Token);
}
catch (OperationCanceledException)
{
}

return 0;
