using BenchmarkDotNet.Attributes;
using Gateway.Benchmarks.Support;

namespace Gateway.Benchmarks;

/// <summary>
/// The live outbound path end to end, in process: <c>ChatRegistry.Deliver</c> of one committed message to N real
/// sessions subscribed to its chat, each on a running <c>WebSocketConnection</c> whose writer pump copies the frame
/// into an in-memory output pipe that a background task drains like a socket. See <see cref="DeliveryFixture"/>.
/// </summary>
/// <remarks>
/// <para><see cref="Deliver"/> is the producer side (what the bus dispatch loop pays per message): serialize once,
/// then per subscriber a seq check under the subscription's lock and a bounded enqueue that may wake the writer pump.
/// The writer pumps and drains run concurrently on the thread pool and compete for the same cores, so their cost
/// shows up as contention; if they fall far behind, <see cref="Deliver"/> waits for them, so sustained throughput
/// is what gets measured.</para>
/// <para><see cref="DeliverAndWaitAll"/> waits until every subscriber's drain has read the frame: the latency of one
/// message through enqueue, thread-pool wake-up, pipe write, flush and read, for all N.</para>
/// <para>The allocation column counts what BenchmarkDotNet attributes to the benchmark; the writer pumps run on other
/// threads. Run <c>alloc-check</c> for process-wide bytes per delivery.</para>
/// <para>BenchmarkDotNet raises the benchmark thread to <see cref="ThreadPriority.Highest"/> (it succeeds on Linux as
/// root or with CAP_SYS_NICE). Here that thread spins while it waits for the writer pumps, so a higher priority would
/// let it starve the very threads it waits for; the first invocation puts it back to Normal.</para>
/// </remarks>
[MemoryDiagnoser]
public class DeliveryBenchmarks
{
    private DeliveryFixture _fixture = null!;
    private bool _priorityReset;

    [Params(1, 100, 1_000)]
    public int Connections { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _fixture = DeliveryFixture.StartAsync(Connections).GetAwaiter().GetResult();

        // Steady state before measuring: each connection's send-queue arrays and the test pipes grow to the deepest
        // backlog they will see (up to 512 frames behind) during the first thousands of deliveries, a one-off that
        // alloc-check shows as its "first window" and that a ShortRun's few iterations would otherwise count as a cost
        // per delivery. Passes of 8 go deepest, so they warm up too.
        for (var i = 0; i < 2_000; i++)
        {
            _fixture.DeliverNext();
        }

        for (var i = 0; i < 250; i++)
        {
            _fixture.DeliverNextPass(8);
        }

        _fixture.WaitAllReceived();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        try
        {
            // Not a performance check: it proves each of the N subscribers got every message and none was closed as
            // a slow consumer, i.e. that the numbers measured a real delivery.
            _fixture.Verify();
            Console.WriteLine($"// Verified: {_fixture.Delivered} messages reached all {_fixture.Connections} subscribers.");
        }
        finally
        {
            _fixture.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    [Benchmark]
    public void Deliver()
    {
        ResetPriority();
        _fixture.DeliverNext();
    }

    /// <summary>
    /// Eight messages in one fanout pass (what the bus hands over when events queue up, e.g. a broadcast past the rate
    /// one-at-a-time delivery keeps up with), per message: each subscriber's writer wakes and flushes once for the
    /// eight frames instead of once each. Compare with <see cref="Deliver"/> (a pass of one).
    /// </summary>
    [Benchmark(OperationsPerInvoke = 8)]
    public void DeliverPassOf8()
    {
        ResetPriority();
        _fixture.DeliverNextPass(8);
    }

    [Benchmark]
    public void DeliverAndWaitAll()
    {
        ResetPriority();
        _fixture.DeliverNextAndWait();
    }

    private void ResetPriority()
    {
        if (!_priorityReset)
        {
            Thread.CurrentThread.Priority = ThreadPriority.Normal;
            _priorityReset = true;
        }
    }
}
