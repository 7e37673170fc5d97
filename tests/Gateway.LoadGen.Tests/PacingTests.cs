using Gateway.LoadGen.Workers;

namespace Gateway.LoadGen.Tests;

/// <summary>The open-loop schedule: message i goes out at start + i / rate, not one period later.</summary>
public sealed class PacingTests
{
    private const long Hz = 1_000_000_000;

    [Theory]
    [InlineData(0L, 20.0, 1L)]                // message 0 is due at the start
    [InlineData(49_999_999L, 20.0, 1L)]       // 1 ns before 1/20 s: still only message 0
    [InlineData(50_000_000L, 20.0, 2L)]       // at 1/20 s message 1 is due
    [InlineData(1_000_000_000L, 2.0, 3L)]     // 2/s after 1 s: messages at 0, 0.5 and 1.0 s
    [InlineData(999_999L, 1000.0, 1L)]
    public void Due_count_includes_the_message_due_now(long elapsed, double rate, long expected) =>
        Assert.Equal(expected, Worker.DueCount(elapsed, rate, Hz));
}
