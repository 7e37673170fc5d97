using System.Buffers;
using BenchmarkDotNet.Attributes;
using Gateway.Benchmarks.Support;
using Gateway.WebSockets.Internal;

namespace Gateway.Benchmarks;

/// <summary>
/// <c>FrameHeader.TryParse</c> + <c>Validate</c> on masked client headers, the per-frame check the receive loop runs before
/// it looks at a payload byte. Each buffer holds the header plus 16 payload bytes, as a pipe read would.
/// </summary>
[MemoryDiagnoser]
public class FrameHeaderBenchmarks
{
    private ReadOnlySequence<byte> _len7;
    private ReadOnlySequence<byte> _len16;
    private ReadOnlySequence<byte> _len64;
    private ReadOnlySequence<byte> _len64Split;

    [GlobalSetup]
    public void Setup()
    {
        _len7 = new ReadOnlySequence<byte>(ClientFrames.Header(100, 16));        // 2 + 4 header bytes
        _len16 = new ReadOnlySequence<byte>(ClientFrames.Header(1_000, 16));     // 4 + 4
        _len64 = new ReadOnlySequence<byte>(ClientFrames.Header(70_000, 16));    // 10 + 4

        // The 14-byte header straddles two segments (cut inside the 8-byte length): the stackalloc-copy path.
        _len64Split = Segments.Split(ClientFrames.Header(70_000, 16), 5);
    }

    [Benchmark(Baseline = true)]
    public long Length7() => Parse(_len7);

    [Benchmark]
    public long Length16() => Parse(_len16);

    [Benchmark]
    public long Length64() => Parse(_len64);

    [Benchmark]
    public long Length64Split() => Parse(_len64Split);

    private static long Parse(in ReadOnlySequence<byte> buffer)
    {
        if (FrameHeader.TryParse(buffer, out var header) != FrameHeaderStatus.Complete || header.Validate() != FrameHeaderError.None)
        {
            Throw();
        }

        return header.PayloadLength + header.HeaderLength + header.MaskKey;
    }

    private static void Throw() => throw new InvalidOperationException("The benchmark header did not parse.");
}
