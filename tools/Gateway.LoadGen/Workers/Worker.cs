using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Gateway.LoadGen.Measurement;
using Gateway.LoadGen.Targets;
using Gateway.Tools.Common;

namespace Gateway.LoadGen.Workers;

/// <summary>
/// A worker process: holds its share of the connections, runs the open-loop publisher and the churn, and streams
/// one <c>tick</c> line per second (interval counters and histograms) to the coordinator. Commands arrive as JSON
/// lines on stdin and are executed one at a time; ticks, publishing and churn run beside them.
/// </summary>
internal sealed class Worker
{
    // Publishes waiting for a socket beyond this many are skipped and counted: an open-loop generator must not
    // buffer without bound when the target falls behind (at 100 B each, 100k pending is ~10 MB).
    private const int MaxPendingPublishes = 100_000;

    private readonly WorkerPlan _plan;
    private readonly TextWriter _out;
    private readonly ILoadTarget _target;
    private readonly IPEndPoint? _local;
    private readonly List<LoadClient> _clients;
    private readonly List<LoadClient> _publishers;
    private readonly WorkerCounters _counters = new();
    private readonly Lock _writeLock = new();
    private readonly SemaphoreSlim _churnGate = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private int _nextToConnect;
    private int _active;
    private int _pendingPublishes;
    private double _rate;
    private double _churnFraction;

    public Worker(WorkerPlan plan, TextWriter output)
    {
        _plan = plan;
        _out = output;
        _target = TargetRegistry.Create(plan.Target);
        _local = plan.SourceAddress is { } a ? new IPEndPoint(IPAddress.Parse(a), 0) : null;
        _clients = [.. plan.Clients.Select(c => new LoadClient(c, _counters, _target.HasServerSeq))];
        _publishers = [.. _clients.Where(c => c.Spec.PublishRoom is not null)];
    }

    /// <summary><c>worker --plan FILE</c>: the process side.</summary>
    public static async Task<int> MainAsync(string[] args)
    {
        var planFile = args.SkipWhile(a => a != "--plan").Skip(1).FirstOrDefault()
            ?? throw new ArgumentException("worker needs --plan FILE");
        var plan = JsonSerializer.Deserialize<WorkerPlan>(await File.ReadAllTextAsync(planFile).ConfigureAwait(false), WireJson.Options)!;
        var worker = new Worker(plan, Console.Out);
        return await worker.RunAsync(Console.In).ConfigureAwait(false);
    }

    public async Task<int> RunAsync(TextReader commands)
    {
        var ticks = TickLoopAsync(_stop.Token);
        var publisher = PublishLoopAsync(_stop.Token);
        var churn = ChurnLoopAsync(_stop.Token);
        try
        {
            while (await commands.ReadLineAsync().ConfigureAwait(false) is { } line)
            {
                if (line.Length == 0)
                {
                    continue;
                }

                var command = JsonSerializer.Deserialize<WorkerCommand>(line, WireJson.Options)!;
                if (command.Op == "exit")
                {
                    break;
                }

                await ExecuteAsync(command).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Emit(new WorkerEvent { Ev = "fatal", Message = e.ToString() });
            return 1;
        }
        finally
        {
            _rate = 0;
            _churnFraction = 0;
            await DisconnectAllAsync().ConfigureAwait(false);
            await _stop.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(publisher, churn).ConfigureAwait(false);
            await ticks.ConfigureAwait(false);
            Emit(Tick());
            Emit(new WorkerEvent { Ev = "done", Op = "exit", Seq = _clients.Select(c => c.Stats()).Aggregate(new SeqStats(), (a, b) => a + b) });
        }

        return 0;
    }

    private async Task ExecuteAsync(WorkerCommand command)
    {
        switch (command.Op)
        {
            case "connect":
                var (ok, failed) = await ConnectNextAsync(command.Count, command.Subscribe, command.Concurrency).ConfigureAwait(false);
                Emit(new WorkerEvent { Ev = "done", Op = "connect", Ok = ok, Failed = failed, Active = _active });
                break;
            case "rate":
                _rate = command.Rate;
                Emit(new WorkerEvent { Ev = "done", Op = "rate" });
                break;
            case "churn":
                _churnFraction = command.Fraction;
                Emit(new WorkerEvent { Ev = "done", Op = "churn" });
                break;
            case "disconnect":
                await DisconnectAllAsync().ConfigureAwait(false);
                Emit(new WorkerEvent { Ev = "done", Op = "disconnect" });
                break;
            case "final":
                var stats = await FinalAsync().ConfigureAwait(false);
                Emit(new WorkerEvent { Ev = "done", Op = "final", Ok = _clients.Count, Seq = stats });
                break;
            default:
                throw new InvalidOperationException($"unknown command '{command.Op}'");
        }
    }

    private async Task<(long Ok, long Failed)> ConnectNextAsync(int count, bool subscribe, int concurrency)
    {
        var batch = _clients.Skip(_nextToConnect).Take(count).ToList();
        _nextToConnect += batch.Count;
        long ok = 0, failed = 0;
        await Parallel.ForEachAsync(batch, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, concurrency) }, async (client, _) =>
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            try
            {
                await client.ConnectAsync(_target, _plan.Target.Endpoint, _local, subscribe, timeout.Token).ConfigureAwait(false);
                Interlocked.Increment(ref _counters.Connects);
                Interlocked.Increment(ref _active);
                Interlocked.Increment(ref ok);
            }
            catch (Exception e)
            {
                Interlocked.Increment(ref _counters.ConnectFailures);
                Interlocked.Increment(ref failed);
                _counters.Error("connect:" + Describe(e));
            }
        }).ConfigureAwait(false);
        return (ok, failed);
    }

    private async Task DisconnectAllAsync()
    {
        await _churnGate.WaitAsync().ConfigureAwait(false);
        try
        {
            await Parallel.ForEachAsync(_clients.Where(c => c.Connection is not null).ToList(),
                new ParallelOptions { MaxDegreeOfParallelism = 256 }, async (client, _) =>
                {
                    await client.DisconnectAsync().ConfigureAwait(false);
                    Interlocked.Decrement(ref _active);
                }).ConfigureAwait(false);
        }
        finally
        {
            _churnGate.Release();
        }
    }

    private async Task<SeqStats> FinalAsync()
    {
        _churnFraction = 0;
        await _churnGate.WaitAsync().ConfigureAwait(false);
        try
        {
            var total = new SeqStats();
            var gate = new Lock();
            await Parallel.ForEachAsync(_clients, new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (client, _) =>
            {
                var wasConnected = client.Connection is not null;
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
                var stats = await client.FinalCheckAsync(_target, _plan.Target.Endpoint, _local, timeout.Token).ConfigureAwait(false);
                if (wasConnected)
                {
                    Interlocked.Decrement(ref _active);
                }

                lock (gate)
                {
                    total += stats;
                }
            }).ConfigureAwait(false);
            return total;
        }
        finally
        {
            _churnGate.Release();
        }
    }

    /// <summary>
    /// Open loop: message i of a rate period is due at start + i / rate whether or not earlier ones went out, and
    /// its payload carries that intended time. Latency is measured from it, so a stalled server shows up as
    /// latency instead of silently lowering the offered load (no coordinated omission).
    /// </summary>
    private async Task PublishLoopAsync(CancellationToken ct)
    {
        var size = Math.Max(Payload.HeaderSize, _plan.MessageSize);
        double rate = 0;
        long start = 0, issued = 0;
        var next = 0;
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                if (_rate != rate)
                {
                    rate = _rate;
                    start = Stopwatch.GetTimestamp();
                    issued = 0;
                }

                if (rate <= 0 || _publishers.Count == 0)
                {
                    continue;
                }

                var due = DueCount(Stopwatch.GetTimestamp() - start, rate, Stopwatch.Frequency);
                for (; issued < due; issued++)
                {
                    var intended = start + (long)(issued * Stopwatch.Frequency / rate);
                    var client = _publishers[next];
                    next = (next + 1) % _publishers.Count;
                    Publish(client, size, intended);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// How many messages of a period started <paramref name="elapsedTicks"/> ago are due. Message i is due at
    /// i / rate, so at elapsed time t the messages 0 .. floor(t * rate) are: floor(t * rate) + 1 of them. (Counting
    /// only floor(t * rate) held every message back one whole period, +50 ms at 20/s and +500 ms at 2/s, and
    /// charged that to the server as latency.)
    /// </summary>
    internal static long DueCount(long elapsedTicks, double rate, long ticksPerSecond) =>
        (long)(elapsedTicks * rate / ticksPerSecond) + 1;

    private void Publish(LoadClient client, int size, long intended)
    {
        if (client.Connection is not { } connection)
        {
            _counters.Error("publish:not-connected");
            return;
        }

        if (Volatile.Read(ref _pendingPublishes) >= MaxPendingPublishes)
        {
            _counters.Error("publish:backlog-full");
            return;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(size);
        Payload.Write(buffer.AsSpan(0, size), client.Spec.Id, Interlocked.Increment(ref client.PublishCounter), intended);
        ValueTask pending;
        try
        {
            pending = connection.PublishAsync(client.Spec.PublishRoom!, buffer.AsMemory(0, size), CancellationToken.None);
        }
        catch (Exception e)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            _counters.Error("publish:" + Describe(e));
            return;
        }

        if (pending.IsCompletedSuccessfully)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            Interlocked.Increment(ref _counters.Sent);
            return;
        }

        Interlocked.Increment(ref _pendingPublishes);
        _ = AwaitPublishAsync(pending, buffer);
    }

    private async Task AwaitPublishAsync(ValueTask pending, byte[] buffer)
    {
        try
        {
            await pending.ConfigureAwait(false);
            Interlocked.Increment(ref _counters.Sent);
        }
        catch (Exception e)
        {
            _counters.Error("publish:" + Describe(e));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            Interlocked.Decrement(ref _pendingPublishes);
        }
    }

    /// <summary>Every second, reconnects a fraction of the subscribers (publishers keep the offered load steady).</summary>
    private async Task ChurnLoopAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                var fraction = _churnFraction;
                if (fraction <= 0)
                {
                    continue;
                }

                await _churnGate.WaitAsync(ct).ConfigureAwait(false);
                try
                {
                    var candidates = _clients.Where(c => c.Connection is not null && c.Spec.PublishRoom is null).ToList();
                    var picks = candidates.OrderBy(_ => Random.Shared.Next()).Take((int)Math.Ceiling(candidates.Count * fraction)).ToList();
                    await Parallel.ForEachAsync(picks, new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (client, _) =>
                    {
                        await client.DisconnectAsync().ConfigureAwait(false);
                        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                        try
                        {
                            await client.ConnectAsync(_target, _plan.Target.Endpoint, _local, subscribe: true, timeout.Token).ConfigureAwait(false);
                            Interlocked.Increment(ref _counters.Reconnects);
                        }
                        catch (Exception e)
                        {
                            Interlocked.Decrement(ref _active);
                            _counters.Error("reconnect:" + Describe(e));
                        }
                    }).ConfigureAwait(false);
                }
                finally
                {
                    _churnGate.Release();
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task TickLoopAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                Emit(Tick());
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private WorkerEvent Tick() => new()
    {
        Ev = "tick",
        Sent = Interlocked.Exchange(ref _counters.Sent, 0),
        Delivered = Interlocked.Exchange(ref _counters.Delivered, 0),
        Connects = Interlocked.Exchange(ref _counters.Connects, 0),
        ConnectFailures = Interlocked.Exchange(ref _counters.ConnectFailures, 0),
        Reconnects = Interlocked.Exchange(ref _counters.Reconnects, 0),
        Errors = _counters.TakeErrors(),
        Latency = Histograms.Encode(_counters.Latency.GetIntervalHistogram()),
        ConnectLatency = Histograms.Encode(_counters.ConnectLatency.GetIntervalHistogram()),
        Active = Volatile.Read(ref _active),
        RssBytes = ProcStatus.RssBytes(Environment.ProcessId),
    };

    private void Emit(WorkerEvent e)
    {
        var line = JsonSerializer.Serialize(e, WireJson.Options);
        lock (_writeLock)
        {
            _out.WriteLine(line);
            _out.Flush();
        }
    }

    private static string Describe(Exception e) => e switch
    {
        System.Net.WebSockets.WebSocketException w when w.Message.StartsWith("http", StringComparison.Ordinal) => w.Message,
        OperationCanceledException => "timeout",
        _ => e.GetType().Name,
    };
}
