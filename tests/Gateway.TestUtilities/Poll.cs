using Xunit;

namespace Gateway.TestUtilities;

/// <summary>
/// Waiting for a state the test cannot be told about: the condition is checked every 10 ms until it holds or the
/// deadline passes (generous by default: the machine that runs the suite is shared and slow). Prefer waiting on an
/// event where the code offers one; this is for the rest.
/// </summary>
public static class Poll
{
    /// <summary>How long <see cref="UntilAsync"/> waits unless told otherwise.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Completes once <paramref name="condition"/> holds; fails the test naming <paramref name="what"/> at the deadline.</summary>
    public static async Task UntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var deadline = Environment.TickCount64 + (long)(timeout ?? DefaultTimeout).TotalMilliseconds;
        while (!condition())
        {
            Assert.True(Environment.TickCount64 < deadline, $"Timed out waiting for: {what}");
            await Task.Delay(10).ConfigureAwait(false);
        }
    }
}
