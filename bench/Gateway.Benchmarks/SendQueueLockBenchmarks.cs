using System.Buffers;
using BenchmarkDotNet.Attributes;

namespace Gateway.Benchmarks;

/// <summary>
/// The writer pump's locking discipline, isolated: producers enqueue frames for one connection while its pump drains
/// them into the output buffer. <see cref="CopyUnderLock"/> is what <c>WebSocketConnection.Pump</c> does (dequeue and
/// copy each frame into the pipe while holding the send lock, so producers wait out the copies); <see cref="SwapQueue"/>
/// swaps the producers' queue for an empty one under the lock and copies outside it (producers wait only for the swap,
/// at the cost of a second queue per connection). Per frame: time for <see cref="Frames"/> frames from
/// <see cref="Producers"/> threads to be written.
/// </summary>
[MemoryDiagnoser]
public class SendQueueLockBenchmarks
{
    private const int Frames = 200_000;
    private byte[] _frame = [];

    [Params(1, 3)]
    public int Producers { get; set; }

    [Params(64, 1024)]
    public int FrameBytes { get; set; }

    [GlobalSetup]
    public void Setup() => _frame = new byte[FrameBytes];

    [Benchmark(Baseline = true, OperationsPerInvoke = Frames)]
    public long CopyUnderLock()
    {
        var sync = new Lock();
        var queue = new Queue<byte[]>();
        return Run(
            frame =>
            {
                lock (sync)
                {
                    queue.Enqueue(frame);
                }
            },
            output =>
            {
                var n = 0;
                lock (sync)
                {
                    while (queue.TryDequeue(out var frame))
                    {
                        output.Write(frame);
                        n++;
                    }
                }

                return n;
            });
    }

    [Benchmark(OperationsPerInvoke = Frames)]
    public long SwapQueue()
    {
        var sync = new Lock();
        var pending = new Queue<byte[]>();
        var draining = new Queue<byte[]>();
        return Run(
            frame =>
            {
                lock (sync)
                {
                    pending.Enqueue(frame);
                }
            },
            output =>
            {
                lock (sync)
                {
                    (pending, draining) = (draining, pending);
                }

                var n = 0;
                while (draining.TryDequeue(out var frame))
                {
                    output.Write(frame);
                    n++;
                }

                return n;
            });
    }

    /// <summary>Starts the producers, drains on this thread until every frame is written, returns the bytes written.</summary>
    private long Run(Action<byte[]> enqueue, Func<ArrayBufferWriter<byte>, int> drain)
    {
        var output = new ArrayBufferWriter<byte>(1 << 20);
        var perProducer = Frames / Producers;
        var total = perProducer * Producers;
        var producers = new Thread[Producers];
        using var start = new ManualResetEventSlim();
        for (var p = 0; p < Producers; p++)
        {
            producers[p] = new Thread(() =>
            {
                start.Wait();
                for (var i = 0; i < perProducer; i++)
                {
                    enqueue(_frame);
                }
            });
            producers[p].Start();
        }

        start.Set();
        long written = 0;
        for (var done = 0; done < total;)
        {
            var n = drain(output);
            done += n;
            written += output.WrittenCount;
            if (output.WrittenCount > (1 << 19))
            {
                // The pipe hands its block on and starts another: keep the copy target a fixed size.
                output.ResetWrittenCount();
            }

            if (n == 0)
            {
                Thread.Yield();
            }
        }

        foreach (var t in producers)
        {
            t.Join();
        }

        return written;
    }
}
