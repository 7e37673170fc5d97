using System.Diagnostics;
using System.Runtime;
using System.Runtime.InteropServices;
using Gateway.Benchmarks.Support;

namespace Gateway.Benchmarks;

/// <summary>
/// Process-wide allocation check (<c>alloc-check</c> mode). BenchmarkDotNet's allocation column may count only the
/// benchmark thread, but a delivery's work is split between the fanout thread and N writer pumps on the thread pool.
/// This mode counts every byte the process allocates (<see cref="GC.GetTotalAllocatedBytes(bool)"/>, precise) across
/// many operations after a warm-up, writer pumps and drains included, and divides.
/// </summary>
/// <remarks>
/// The process also allocates for reasons of its own (tiered JIT bookkeeping, timers). An idle window of the same length
/// is measured right after each run and printed as the noise floor, so a small non-zero figure can be judged.
/// </remarks>
internal static class AllocCheck
{
    private const int Deliveries = 10_000;
    private const int InboundBatches = 1_000;
    private const int FramesPerBatch = 100;

    /// <summary>
    /// Warm-up: long enough for tiered compilation to promote the hot methods (30 calls, then a 100 ms back-off and a
    /// background re-JIT), so steady-state code is what gets measured.
    /// </summary>
    private static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(1.5);

    private static bool _sampleTypes;

    /// <summary>Runs every check and prints a markdown table.</summary>
    /// <param name="sampleTypes">Also print the types the runtime's allocation-tick events name during each window.</param>
    public static async Task<int> RunAsync(bool sampleTypes)
    {
        _sampleTypes = sampleTypes;
        Console.WriteLine($"# alloc-check  ({RuntimeInformation.FrameworkDescription}, {RuntimeInformation.OSDescription}, " +
            $"{Environment.ProcessorCount} cores, {(GCSettings.IsServerGC ? "Server" : "Workstation")} GC, " +
            $"concurrent={IsConcurrentGc()}, latency={GCSettings.LatencyMode})");
        Console.WriteLine();
        Console.WriteLine("| Path | N | Operations | Process bytes/op | Bytes/frame | Benchmark-thread bytes/op | Idle noise bytes (same window) | ops/s |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|");

        foreach (int n in new[] { 1, 100, 1_000 })
        {
            await DeliveryAsync(n).ConfigureAwait(false);
        }

        await InboundAsync().ConfigureAwait(false);
        return 0;
    }

    private static async Task DeliveryAsync(int connections)
    {
        var fixture = await DeliveryFixture.StartAsync(connections).ConfigureAwait(false);
        try
        {
            var warm = Stopwatch.StartNew();
            while (warm.Elapsed < WarmUp || fixture.Delivered < 2_000)
            {
                fixture.DeliverNext();
            }

            fixture.WaitAllReceived();
            var pipelined = Measure(() =>
            {
                for (int i = 0; i < Deliveries; i++)
                {
                    fixture.DeliverNext();
                }

                // Writer loops and drains finish their share inside the window.
                fixture.WaitAllReceived();
            });
            fixture.Verify();
            Print("Deliver, pipelined (≤ 512 behind)", connections, Deliveries, pipelined, framesPerOp: connections);

            // The same again: capacity that grew to the backlog in the first window (send-queue arrays, the test pipes'
            // blocks) is in place now, so what remains here is what a delivery costs in steady state.
            var again = Measure(() =>
            {
                for (int i = 0; i < Deliveries; i++)
                {
                    fixture.DeliverNext();
                }

                fixture.WaitAllReceived();
            });
            fixture.Verify();
            Print("Deliver, pipelined, 2nd window", connections, Deliveries, again, framesPerOp: connections);

            // Fanout passes of 8 (the bus's batches under load): one writer wake and flush per 8 frames.
            var passes = Measure(() =>
            {
                for (int i = 0; i < Deliveries / 8; i++)
                {
                    fixture.DeliverNextPass(8);
                }

                fixture.WaitAllReceived();
            });
            fixture.Verify();
            Print("Deliver, passes of 8", connections, Deliveries / 8 * 8, passes, framesPerOp: connections);

            var lockstep = Measure(() =>
            {
                for (int i = 0; i < Deliveries; i++)
                {
                    fixture.DeliverNextAndWait();
                }
            });
            fixture.Verify();
            Print("Deliver, lockstep (1 in flight)", connections, Deliveries, lockstep, framesPerOp: connections);
        }
        finally
        {
            await fixture.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static async Task InboundAsync()
    {
        var fixture = new InboundFixture(FramesPerBatch);
        try
        {
            var warm = Stopwatch.StartNew();
            while (warm.Elapsed < WarmUp)
            {
                fixture.PushBatch();
            }

            var m = Measure(() =>
            {
                for (int i = 0; i < InboundBatches; i++)
                {
                    fixture.PushBatch();
                }
            });
            Print($"Inbound frame ({fixture.FrameBytes} B masked Send, {FramesPerBatch}/read)", 1,
                (long)InboundBatches * FramesPerBatch, m, framesPerOp: 1);
        }
        finally
        {
            await fixture.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static Measurement Measure(Action run)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        using var sampler = _sampleTypes ? new AllocationSampler() : null;
        sampler?.Start();
        long total0 = GC.GetTotalAllocatedBytes(precise: true);
        long thread1 = 0;
        var sw = Stopwatch.StartNew();

        // On a dedicated thread, like BenchmarkDotNet's main thread (not a thread-pool worker whose local queue would
        // collect the writer pumps' wake-ups).
        var thread = new Thread(() =>
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            run();
            thread1 = GC.GetAllocatedBytesForCurrentThread() - before;
        });
        thread.Start();
        thread.Join();
        sw.Stop();
        long total1 = GC.GetTotalAllocatedBytes(precise: true);
        if (sampler is not null)
        {
            foreach (var (type, n) in sampler.Stop().Take(8))
            {
                Console.WriteLine($"  sampled: {n} x {type}");
            }
        }

        // The same length of time with nothing to do: what the process allocates on its own.
        long idle0 = GC.GetTotalAllocatedBytes(precise: true);
        Thread.Sleep(sw.Elapsed);
        long idle1 = GC.GetTotalAllocatedBytes(precise: true);
        return new Measurement(total1 - total0, thread1, idle1 - idle0, sw.Elapsed);
    }

    private static void Print(string path, int n, long operations, Measurement m, int framesPerOp)
    {
        double perOp = (double)m.ProcessBytes / operations;
        Console.WriteLine($"| {path} | {n:N0} | {operations:N0} | {perOp:F3} | {perOp / framesPerOp:F4} | " +
            $"{(double)m.ThreadBytes / operations:F3} | {m.IdleBytes:N0} | {operations / m.Elapsed.TotalSeconds:N0} |");
    }

    private static bool IsConcurrentGc() =>
        AppContext.GetData("System.GC.Concurrent") is not bool concurrent || concurrent;

    private readonly record struct Measurement(long ProcessBytes, long ThreadBytes, long IdleBytes, TimeSpan Elapsed);
}
