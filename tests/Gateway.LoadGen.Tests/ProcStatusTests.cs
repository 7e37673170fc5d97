using System.Diagnostics;
using Gateway.LoadGen.Measurement;

namespace Gateway.LoadGen.Tests;

/// <summary>CPU time from /proc/&lt;pid&gt;/stat: what the server and load generator CPU columns are computed from.</summary>
public sealed class ProcStatusTests
{
    [Theory]
    [InlineData("1234 (dotnet) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 12 0 100 0", 325L)]
    [InlineData("1234 (a) b (c) R 1 1 1 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 0", 10L)] // spaces and ')' in the name
    public void Parses_utime_plus_stime(string stat, long expected) => Assert.Equal(expected, ProcStatus.ParseCpuTicks(stat));

    [Theory]
    [InlineData(50.0, 1000.0, 500.0)]   // half a CPU for 1,000 deliveries/s: 500 µs each
    [InlineData(94.3, 1_014_191.0, 0.93)]
    [InlineData(-1.0, 1000.0, -1.0)]    // server CPU not sampled
    [InlineData(50.0, 0.0, -1.0)]       // nothing delivered
    public void Cpu_per_delivery_from_share_and_rate(double pct, double rate, double expected) =>
        Assert.Equal(expected, ProcStatus.CpuUsPer(pct, rate), 3);

    [Fact]
    public void Own_cpu_time_grows_with_work_and_a_missing_process_reads_minus_one()
    {
        var before = ProcStatus.CpuTicks(Environment.ProcessId);
        Assert.True(before >= 0);

        // Burn at least 50 ms of CPU (5 ticks): the counter must move.
        var sw = Stopwatch.StartNew();
        var x = 0UL;
        while (ProcStatus.CpuTicks(Environment.ProcessId) < before + 5 && sw.Elapsed < TimeSpan.FromSeconds(30))
        {
            for (var i = 0; i < 1_000_000; i++)
            {
                x = (x * 6364136223846793005UL) + 1442695040888963407UL;
            }
        }

        Assert.True(ProcStatus.CpuTicks(Environment.ProcessId) >= before + 5, $"CPU ticks did not move ({x})");
        Assert.Equal(-1, ProcStatus.CpuTicks(int.MaxValue));
    }
}
