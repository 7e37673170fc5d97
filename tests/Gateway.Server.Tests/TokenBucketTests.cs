using Gateway.Server.Connections;

namespace Gateway.Server.Tests;

/// <summary>The token bucket, driven by an explicit clock (ticks of 100 ns).</summary>
public sealed class TokenBucketTests
{
    private const long Second = TimeSpan.TicksPerSecond;

    [Fact]
    public void A_full_bucket_allows_the_burst_then_refuses_with_the_exact_wait()
    {
        var bucket = new TokenBucket(tokensPerSecond: 2, burst: 3);
        long now = 100 * Second;
        Assert.True(bucket.IsFull(now));
        Assert.Equal(3, bucket.Available(now));
        for (var i = 0; i < 3; i++)
        {
            Assert.True(bucket.TryTake(now, out var zero));
            Assert.Equal(TimeSpan.Zero, zero);
        }

        Assert.False(bucket.TryTake(now, out var retryAfter));
        Assert.Equal(TimeSpan.FromMilliseconds(500), retryAfter); // one token every 1 / 2 s
        Assert.Equal(0, bucket.Available(now));
        Assert.False(bucket.IsFull(now));

        // Just before the token arrives: still refused, with the remainder; exactly then: allowed.
        Assert.False(bucket.TryTake(now + retryAfter.Ticks - 1, out var rest));
        Assert.Equal(1, rest.Ticks);
        Assert.True(bucket.TryTake(now + retryAfter.Ticks, out _));
    }

    [Fact]
    public void Refills_at_the_rate_up_to_the_burst_and_no_further()
    {
        var bucket = new TokenBucket(tokensPerSecond: 10, burst: 5);
        long now = 0;
        for (var i = 0; i < 5; i++)
        {
            Assert.True(bucket.TryTake(now, out _));
        }

        Assert.Equal(0, bucket.Available(now));
        Assert.Equal(2, bucket.Available(now + (Second / 5)));   // 0.2 s at 10/s = 2 tokens
        Assert.True(bucket.IsFull(now + (Second / 2)));         // 5 tokens after 0.5 s
        Assert.Equal(5, bucket.Available(now + (60 * Second)));  // an idle minute does not bank more than the burst

        now += 60 * Second;
        var taken = 0;
        while (bucket.TryTake(now, out _))
        {
            taken++;
        }

        Assert.Equal(5, taken);
    }

    [Fact]
    public void Fractional_rates_work()
    {
        var bucket = new TokenBucket(tokensPerSecond: 0.1, burst: 1);
        Assert.True(bucket.TryTake(Second, out _));
        Assert.False(bucket.TryTake(Second, out var retryAfter));
        Assert.Equal(TimeSpan.FromSeconds(10), retryAfter);
    }

    [Fact]
    public async Task Concurrent_takers_share_exactly_the_burst()
    {
        var bucket = new TokenBucket(tokensPerSecond: 1, burst: 1000);
        long now = 5 * Second; // frozen clock: no refill while the threads race
        var successes = 0;
        using var start = new Barrier(4);
        var workers = Enumerable.Range(0, 4).Select(w => Task.Run(() =>
        {
            start.SignalAndWait(TimeSpan.FromSeconds(10));
            for (var i = 0; i < 1000; i++)
            {
                if (bucket.TryTake(now, out _))
                {
                    Interlocked.Increment(ref successes);
                }
            }
        })).ToArray();
        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1000, successes);
    }

    [Fact]
    public void Rejects_invalid_parameters()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TokenBucket(0, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TokenBucket(double.NaN, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TokenBucket(double.PositiveInfinity, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TokenBucket(1, 0));
    }

    [Fact]
    public void GetTicks_reads_a_monotonic_clock_in_timespan_ticks()
    {
        var a = TokenBucket.GetTicks(TimeProvider.System);
        var b = TokenBucket.GetTicks(TimeProvider.System);
        Assert.True(a >= 0);
        Assert.True(b >= a);
    }
}
