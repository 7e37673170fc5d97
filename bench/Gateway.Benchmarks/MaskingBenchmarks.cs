using BenchmarkDotNet.Attributes;
using Gateway.WebSockets.Internal;

namespace Gateway.Benchmarks;

/// <summary>
/// RFC 6455 §5.3 unmasking in place: the vectorized <c>Masking.Apply</c> against the textbook byte-at-a-time loop, so
/// BenchmarkDotNet reports the speed-up as the ratio. XOR is its own inverse, so re-applying to the same buffer every
/// invocation is the same work as unmasking fresh data (and it stays in cache, as a just-received payload does).
/// </summary>
[MemoryDiagnoser]
public class MaskingBenchmarks
{
    private const uint Key = 0x5A3C_96E1;
    private byte[] _data = [];

    /// <summary>1 KiB: a chat message; 64 KiB: the largest message the gateway accepts.</summary>
    [Params(1024, 64 * 1024)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _data = new byte[Size];
        new Random(42).NextBytes(_data);
    }

    [Benchmark(Baseline = true)]
    public int Scalar() => ScalarApply(_data, Key, 0);

    [Benchmark]
    public int Vectorized() => Masking.Apply(_data.AsSpan(), Key, 0);

    /// <summary>The reference: byte i XOR key byte (i + offset) mod 4, with the key in memory order.</summary>
    private static int ScalarApply(Span<byte> data, uint maskKey, int offset)
    {
        Span<byte> key = stackalloc byte[4];
        BitConverter.TryWriteBytes(key, maskKey);
        for (int i = 0; i < data.Length; i++)
        {
            data[i] ^= key[(offset + i) & 3];
        }

        return (offset + data.Length) & 3;
    }
}
