using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;

namespace Gateway.LoadGen.Workers;

/// <summary>The coordinator's handle on one worker process: writes commands, routes its lines.</summary>
internal sealed class WorkerProxy : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Channel<WorkerEvent> _done = Channel.CreateUnbounded<WorkerEvent>();
    private readonly Task _reader;
    private readonly Task _errors;
    private readonly string _planFile;

    private WorkerProxy(int index, Process process, string planFile, Aggregator aggregator)
    {
        Index = index;
        _process = process;
        _planFile = planFile;
        _reader = ReadAsync(aggregator);
        _errors = ForwardErrorsAsync();
    }

    public int Index { get; }

    /// <summary>The worker process's id (for its CPU time).</summary>
    public int Pid => _process.Id;

    public int ClientCount { get; private init; }

    public int PublisherCount { get; private init; }

    public int Requested { get; set; }

    /// <summary>Starts <c>dotnet Gateway.LoadGen.dll worker --plan FILE</c>. It inherits this process's CPU affinity.</summary>
    public static WorkerProxy Start(int index, WorkerPlan plan, Aggregator aggregator)
    {
        var planFile = Path.Combine(Path.GetTempPath(), $"loadgen-plan-{Environment.ProcessId}-{index}-{Guid.NewGuid():N}.json");
        File.WriteAllText(planFile, JsonSerializer.Serialize(plan, WireJson.Options));
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(typeof(WorkerProxy).Assembly.Location);
        psi.ArgumentList.Add("worker");
        psi.ArgumentList.Add("--plan");
        psi.ArgumentList.Add(planFile);

        // Each worker is one of up to a few dozen small processes on a shared box: workstation GC, no per-core heaps.
        psi.Environment["DOTNET_gcServer"] = "0";
        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start a worker");
        return new WorkerProxy(index, process, planFile, aggregator)
        {
            ClientCount = plan.Clients.Count,
            PublisherCount = plan.Clients.Count(c => c.PublishRoom is not null),
        };
    }

    /// <summary>Sends a command and waits for its <c>done</c> line.</summary>
    public async Task<WorkerEvent> CommandAsync(WorkerCommand command, TimeSpan timeout)
    {
        await _process.StandardInput.WriteLineAsync(JsonSerializer.Serialize(command, WireJson.Options)).ConfigureAwait(false);
        await _process.StandardInput.FlushAsync().ConfigureAwait(false);
        using var cts = new CancellationTokenSource(timeout);
        while (true)
        {
            WorkerEvent e;
            try
            {
                e = await _done.Reader.ReadAsync(cts.Token).ConfigureAwait(false);
            }
            catch (ChannelClosedException)
            {
                throw new InvalidOperationException($"worker {Index} exited during '{command.Op}'");
            }

            if (e.Ev == "fatal")
            {
                throw new InvalidOperationException($"worker {Index} failed: {e.Message}");
            }

            if (e.Op == command.Op)
            {
                return e;
            }
        }
    }

    /// <summary>Asks the worker to close everything and exit; returns its last sequence totals.</summary>
    public async Task<WorkerEvent?> ExitAsync(TimeSpan timeout)
    {
        if (_process.HasExited)
        {
            return null;
        }

        try
        {
            return await CommandAsync(new WorkerCommand { Op = "exit" }, timeout).ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidOperationException or OperationCanceledException or IOException)
        {
            return null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            _process.Kill(entireProcessTree: true);
        }

        await Task.WhenAll(_reader, _errors).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        _process.Dispose();
        File.Delete(_planFile);
    }

    private async Task ReadAsync(Aggregator aggregator)
    {
        try
        {
            while (await _process.StandardOutput.ReadLineAsync().ConfigureAwait(false) is { } line)
            {
                if (!line.StartsWith('{'))
                {
                    continue;
                }

                var e = JsonSerializer.Deserialize<WorkerEvent>(line, WireJson.Options)!;
                if (e.Ev == "tick")
                {
                    aggregator.Add(Index, e);
                }
                else
                {
                    await _done.Writer.WriteAsync(e).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            _done.Writer.TryComplete();
        }
    }

    private async Task ForwardErrorsAsync()
    {
        while (await _process.StandardError.ReadLineAsync().ConfigureAwait(false) is { } line)
        {
            await Console.Error.WriteLineAsync($"[worker {Index}] {line}").ConfigureAwait(false);
        }
    }
}
