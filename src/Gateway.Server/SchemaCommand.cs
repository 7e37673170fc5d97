using Gateway.Cql;
using Gateway.Server.Config;
using Gateway.Storage.Scylla;

namespace Gateway.Server;

/// <summary>
/// <c>schema print|apply [--Store:Keyspace=… --Store:Replication=… --Store:ContactPoints=…]</c>: shows the Scylla schema
/// as a CQL script, or applies it (idempotent) and records its version. Settings come from the same places as the
/// server's (appsettings.json, environment, command line), so the keyspace and bucket size agree with the writers'.
/// </summary>
internal static class SchemaCommand
{
    private const string Usage = "usage: Gateway.Server schema print|apply [--Store:ContactPoints=host[:port],…] [--Store:Keyspace=chatgw] [--Store:Replication=\"{'class': 'NetworkTopologyStrategy', 'dc1': 3}\"] [--Store:BucketSize=1000]";

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length == 0 || args[0] is not ("print" or "apply"))
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }

        var config = new ConfigurationBuilder().AddJsonFile("appsettings.json", optional: true).AddEnvironmentVariables().AddCommandLine(args[1..]).Build();
        var store = config.GetSection(StoreOptions.Section).Get<StoreOptions>() ?? new StoreOptions();
        store.Kind = "scylla";
        if (args[0] == "print")
        {
            try
            {
                Console.Out.Write(ScyllaSchema.Script(store));
                return 0;
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine($"Gateway.Server: {e.Message.Split(" (Parameter", 2)[0]}");
                return 1;
            }
        }

        if (new StoreOptionsValidator(GatewayRole.Writer).Validate(null, store).Failures is { } failures)
        {
            foreach (var failure in failures)
            {
                Console.Error.WriteLine($"Gateway.Server: {failure}");
            }

            return 1;
        }

        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            var cluster = await CqlCluster.ConnectAsync(ScyllaChatStore.ClusterOptions(store), cancellationToken: timeout.Token).ConfigureAwait(false);
            int before;
            try
            {
                before = await ScyllaSchema.ApplyAsync(cluster, store, timeout.Token).ConfigureAwait(false);
            }
            finally
            {
                await cluster.DisposeAsync().ConfigureAwait(false);
            }

            Console.Out.WriteLine(before == 0
                ? $"Created the chatgw schema version {ScyllaSchema.Version} in keyspace {store.Keyspace} (bucket size {store.BucketSize})"
                : $"Keyspace {store.Keyspace} holds chatgw schema version {before}; now {ScyllaSchema.Version}");
            return 0;
        }
        catch (Exception e) when (e is CqlException or InvalidOperationException or OperationCanceledException)
        {
            Console.Error.WriteLine($"Gateway.Server: schema apply failed: {e.Message}");
            return 1;
        }
    }
}
