using System.Diagnostics;

namespace Gateway.ScaleOutBench;

/// <summary>
/// A child process of the bench (nats-server or a Gateway.Server role), optionally pinned with <c>taskset</c>. Its
/// output is kept in memory (last lines) for error messages; every live child is killed on exit, Ctrl-C included.
/// </summary>
internal sealed class ChildProcess : IAsyncDisposable
{
    private static readonly List<ChildProcess> Live = [];
    private readonly Process _process;
    private readonly Queue<string> _tail = new();

    static ChildProcess()
    {
        // The last resort, if the bench exits without disposing its deployments (an unhandled exception): no
        // server is left behind. Signals are handled in Program, which cancels and disposes in order.
        AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAll();
    }

    private ChildProcess(string name, Process process)
    {
        Name = name;
        _process = process;
    }

    /// <summary>Short name for messages (<c>nats</c>, <c>writer</c>, <c>gateway-a</c>, …).</summary>
    public string Name { get; }

    /// <summary>The process id (the program's own: taskset execs it).</summary>
    public int Pid => _process.Id;

    /// <summary>True once the process has exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>Starts <paramref name="file"/> with <paramref name="args"/>; with <paramref name="cpus"/>, under <c>taskset -c</c>.</summary>
    public static ChildProcess Start(string name, string file, IEnumerable<string> args, string? cpus)
    {
        var psi = new ProcessStartInfo(cpus is null ? file : "taskset")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (cpus is not null)
        {
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add(cpus);
            psi.ArgumentList.Add(file);
        }

        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        var process = Process.Start(psi) ?? throw new InvalidOperationException($"{name}: could not start {file}");
        var child = new ChildProcess(name, process);
        process.OutputDataReceived += (_, e) => child.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => child.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        lock (Live)
        {
            Live.Add(child);
        }

        return child;
    }

    /// <summary>The last lines the process wrote (stdout and stderr).</summary>
    public string Tail()
    {
        lock (_tail)
        {
            return string.Join(Environment.NewLine, _tail);
        }
    }

    /// <summary>Waits until <paramref name="file"/> exists (the process's "I am listening" signal), or throws with its output.</summary>
    public async Task WaitForFileAsync(string file, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = Stopwatch.StartNew();
        while (!File.Exists(file))
        {
            if (HasExited || deadline.Elapsed > timeout)
            {
                throw new InvalidOperationException($"{Name} did not become ready within {timeout.TotalSeconds:0} s " +
                    $"(exited: {HasExited}). Its last output:{Environment.NewLine}{Tail()}");
            }

            await Task.Delay(25, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Kills the process (SIGKILL, whole tree) and waits for it.</summary>
    public async ValueTask DisposeAsync()
    {
        Kill();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await _process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        lock (Live)
        {
            Live.Remove(this);
        }

        _process.Dispose();
    }

    private void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
        {
            // Already gone, or being reaped.
        }
    }

    private static void KillAll()
    {
        ChildProcess[] live;
        lock (Live)
        {
            live = [.. Live];
        }

        foreach (var child in live)
        {
            child.Kill();
        }
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_tail)
        {
            // 40 lines are enough to show a start-up exception and its cause.
            if (_tail.Count == 40)
            {
                _tail.Dequeue();
            }

            _tail.Enqueue(line);
        }
    }
}
