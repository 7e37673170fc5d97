using System.Diagnostics;
using System.Globalization;

namespace Gateway.LoadGen.Chaos;

/// <summary>
/// One component of the chaos topology (a nats-server node, a writer, a gateway, or the embedded server): a child
/// process that can be SIGKILLed and started again with the same arguments (same ports, same data directory). Its
/// stdout and stderr go, time-stamped, into one log file in the run's output directory, across restarts. Every live
/// component is killed when the tool exits, Ctrl-C and unhandled errors included.
/// </summary>
internal sealed class ChaosProcess : IAsyncDisposable
{
    private static readonly List<ChaosProcess> Live = [];
    private readonly Lock _lock = new();
    private readonly string _file;
    private readonly string[] _args;
    private readonly Func<Process, string?> _readyProbe;
    private readonly Func<ChaosProcess, CancellationToken, Task>? _beforeStart;
    private readonly StreamWriter _log;
    private readonly Stopwatch _clock;
    private Process? _process;
    private int _starts;

    static ChaosProcess()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAll();
    }

    /// <param name="name">Unique name: <c>nats-1</c>, <c>writer-2</c>, <c>gateway-1</c>, <c>server</c>.</param>
    /// <param name="kind"><c>nats</c>, <c>writer</c>, <c>gateway</c> or <c>server</c>.</param>
    /// <param name="file">The program.</param>
    /// <param name="args">Its arguments, the same at every start.</param>
    /// <param name="readyProbe">Returns a non-null ready marker (e.g. the ports file's path) once the started process
    /// is serving; called every 50 ms with the process.</param>
    /// <param name="beforeStart">Run before every start (e.g. delete the old ports file).</param>
    /// <param name="logPath">Where its output goes (appended).</param>
    /// <param name="clock">The run's clock, for time stamps.</param>
    public ChaosProcess(string name, string kind, string file, string[] args, Func<Process, string?> readyProbe,
        Func<ChaosProcess, CancellationToken, Task>? beforeStart, string logPath, Stopwatch clock)
    {
        Name = name;
        Kind = kind;
        _file = file;
        _args = args;
        _readyProbe = readyProbe;
        _beforeStart = beforeStart;
        _clock = clock;
        _log = new StreamWriter(new FileStream(logPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
        LogPath = logPath;
    }

    public string Name { get; }

    public string Kind { get; }

    public string LogPath { get; }

    /// <summary>True while a started process is running.</summary>
    public bool IsRunning
    {
        get
        {
            lock (_lock)
            {
                return _process is { HasExited: false };
            }
        }
    }

    /// <summary>The current pid, or null.</summary>
    public int? Pid
    {
        get
        {
            lock (_lock)
            {
                return _process is { HasExited: false } p ? p.Id : null;
            }
        }
    }

    /// <summary>Starts it and waits until it is ready; a start whose process exits early (e.g. a writer before the
    /// cluster has a JetStream leader) is tried again until <paramref name="timeout"/>.</summary>
    /// <exception cref="InvalidOperationException">Not ready in time.</exception>
    public async Task StartAsync(TimeSpan timeout, CancellationToken ct)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            if (_beforeStart is not null)
            {
                await _beforeStart(this, ct).ConfigureAwait(false);
            }

            var p = Launch();
            while (true)
            {
                if (_readyProbe(p) is not null)
                {
                    Write($"--- ready (pid {p.Id})");
                    return;
                }

                if (p.HasExited)
                {
                    Write($"--- exited with {p.ExitCode} before it was ready");
                    break;
                }

                if (deadline.Elapsed > timeout)
                {
                    Kill("not ready in time");
                    throw new InvalidOperationException($"{Name} was not ready within {timeout.TotalSeconds:0} s; see {LogPath}");
                }

                await Task.Delay(50, ct).ConfigureAwait(false);
            }

            if (deadline.Elapsed > timeout)
            {
                throw new InvalidOperationException($"{Name} kept exiting at start-up for {timeout.TotalSeconds:0} s; see {LogPath}");
            }

            await Task.Delay(1000, ct).ConfigureAwait(false);
        }
    }

    /// <summary>SIGKILL (the whole tree), and wait for it to be gone.</summary>
    public void Kill(string why)
    {
        Process? p;
        lock (_lock)
        {
            p = _process;
            _process = null;
        }

        if (p is null)
        {
            return;
        }

        try
        {
            if (!p.HasExited)
            {
                Write($"--- SIGKILL ({why})");
                p.Kill(entireProcessTree: true);
                p.WaitForExit(10_000);
            }
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
        {
            // already gone
        }

        p.Dispose();
        lock (Live)
        {
            Live.Remove(this);
        }
    }

    public ValueTask DisposeAsync()
    {
        Kill("end of run");
        lock (_lock)
        {
            _log.Dispose();
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>Kills every component still running (exit, Ctrl-C).</summary>
    public static void KillAll()
    {
        ChaosProcess[] live;
        lock (Live)
        {
            live = [.. Live];
        }

        foreach (var c in live)
        {
            c.Kill("tool exiting");
        }
    }

    private Process Launch()
    {
        var psi = new ProcessStartInfo(_file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
        };
        foreach (var a in _args)
        {
            psi.ArgumentList.Add(a);
        }

        var n = Interlocked.Increment(ref _starts);
        Write($"--- start #{n}: {_file} {string.Join(' ', _args.Select(a => a.Contains("SigningKey", StringComparison.Ordinal) || a.Contains("AdminKey", StringComparison.Ordinal) ? a.Split('=')[0] + "=***" : a))}");
        var p = Process.Start(psi) ?? throw new InvalidOperationException($"{Name}: could not start {_file}");
        p.OutputDataReceived += (_, e) => Write(e.Data);
        p.ErrorDataReceived += (_, e) => Write(e.Data);
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        lock (_lock)
        {
            _process = p;
        }

        lock (Live)
        {
            Live.Add(this);
        }

        return p;
    }

    private void Write(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_lock)
        {
            try
            {
                _log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{_clock.Elapsed.TotalSeconds,8:0.000}] {line}"));
            }
            catch (ObjectDisposedException)
            {
                // output after the end of the run
            }
        }
    }
}
