using BenchmarkDotNet.Running;
using Gateway.Benchmarks;

// dotnet run -c Release --project bench/Gateway.Benchmarks -- --filter '*' [--job short]
// dotnet run -c Release --project bench/Gateway.Benchmarks -- alloc-check [--types]
// dotnet run -c Release --project bench/Gateway.Benchmarks -- cql-throughput [--seconds 5] [--rounds 3] [--in-flight 256] [--warmup-seconds 5]
// dotnet run -c Release --project bench/Gateway.Benchmarks -- idle-memory [--connections 15000] [--steps 5] [--gc both|server|workstation] [--types] [--env=NAME=VALUE] [--server-dll PATH]
if (args.Length > 0 && string.Equals(args[0], "alloc-check", StringComparison.Ordinal))
{
    return await AllocCheck.RunAsync(sampleTypes: args.Contains("--types")).ConfigureAwait(false);
}

if (args.Length > 0 && string.Equals(args[0], "cql-throughput", StringComparison.Ordinal))
{
    return await CqlThroughput.RunAsync(args[1..]).ConfigureAwait(false);
}

if (args.Length > 0 && string.Equals(args[0], "idle-memory", StringComparison.Ordinal))
{
    return await IdleMemory.RunAsync(args[1..]).ConfigureAwait(false);
}

if (args.Length > 1 && string.Equals(args[0], "heap-census", StringComparison.Ordinal))
{
    return IdleMemory.PrintHeapCensus(int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture));
}

// typeof(AllocCheck), not typeof(Program): Gateway.Server's own top-level Program is visible here through InternalsVisibleTo.
BenchmarkSwitcher.FromAssembly(typeof(AllocCheck).Assembly).Run(args);
return 0;
