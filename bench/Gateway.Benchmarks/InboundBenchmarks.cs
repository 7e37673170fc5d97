using BenchmarkDotNet.Attributes;
using Gateway.Benchmarks.Support;

namespace Gateway.Benchmarks;

/// <summary>
/// The receive path per frame: a running <c>WebSocketConnection</c> reads masked binary frames from its input pipe
/// (header parse and validation, message-size check, in-place unmask, handler call with the pipe's own bytes, one
/// AdvanceTo per read) and the handler decodes each Send with <c>ClientFrameReader.TryRead</c>. Each frame carries a
/// Send with 100 content bytes (171 bytes on the wire: 4-byte header with a 16-bit length, 4-byte mask key, 163-byte payload). Results are per frame; steady state must be 0 B.
/// </summary>
/// <remarks>One frame per read is a chatty client on an idle connection; 100 per read is a busy pipe, where the
/// per-read costs (ReadAsync, AdvanceTo, the async loop) are shared by 100 frames.</remarks>
[MemoryDiagnoser]
public class InboundBenchmarks
{
    private InboundFixture _one = null!;
    private InboundFixture _hundred = null!;

    [GlobalSetup]
    public void Setup()
    {
        _one = new InboundFixture(1);
        _hundred = new InboundFixture(100);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _one.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _hundred.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    [Benchmark(Baseline = true)]
    public void OneFramePerRead() => _one.PushBatch();

    [Benchmark(OperationsPerInvoke = 100)]
    public void HundredFramesPerRead() => _hundred.PushBatch();
}
