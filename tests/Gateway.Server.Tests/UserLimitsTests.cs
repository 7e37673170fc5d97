using Gateway.Server.Sessions;

namespace Gateway.Server.Tests;

/// <summary>Per-user rate limits: one bucket per kind, shared by a user's sessions, dropped with the last one.</summary>
public sealed class UserLimitsTests
{
    /// <summary>A clock that moves only when told (monotonic timestamps in ticks).</summary>
    private sealed class ManualClock : TimeProvider
    {
        public long Ticks { get; set; } = TimeSpan.TicksPerHour;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Ticks;
    }

    private static UserLimits Create(ManualClock clock) => new(new GatewayOptions
    {
        SendsPerSecond = 1,
        SendBurst = 3,
        SubscribesPerSecond = 1,
        SubscribeBurst = 2,
        HistoryPerSecond = 1,
        HistoryBurst = 1,
        TypingPerSecond = 1,
        TypingBurst = 1,
    }, clock);

    [Fact]
    public void Each_kind_has_its_own_bucket_with_its_own_burst_and_refill()
    {
        var clock = new ManualClock();
        var limits = Create(clock);
        var user = limits.Acquire("t1", "alice");
        for (var i = 0; i < 3; i++)
        {
            Assert.True(limits.TryTake(user, RateKind.Send, out _));
        }

        Assert.False(limits.TryTake(user, RateKind.Send, out var retryAfter));
        Assert.Equal(TimeSpan.FromSeconds(1), retryAfter);

        // The other kinds are untouched by the sends.
        Assert.True(limits.TryTake(user, RateKind.Subscribe, out _));
        Assert.True(limits.TryTake(user, RateKind.Subscribe, out _));
        Assert.False(limits.TryTake(user, RateKind.Subscribe, out _));
        Assert.True(limits.TryTake(user, RateKind.History, out _));
        Assert.False(limits.TryTake(user, RateKind.History, out _));
        Assert.True(limits.TryTake(user, RateKind.Typing, out _));
        Assert.False(limits.TryTake(user, RateKind.Typing, out _));

        clock.Ticks += TimeSpan.TicksPerSecond;
        Assert.True(limits.TryTake(user, RateKind.Send, out _));
        Assert.False(limits.TryTake(user, RateKind.Send, out _));
        limits.Release("t1", "alice");
    }

    [Fact]
    public void A_users_sessions_share_the_buckets_and_the_last_release_forgets_them()
    {
        var clock = new ManualClock();
        var limits = Create(clock);
        var first = limits.Acquire("t1", "alice");
        var second = limits.Acquire("t1", "alice");
        var other = limits.Acquire("t1", "bob");
        var otherTenant = limits.Acquire("t2", "alice");
        Assert.Same(first, second);
        Assert.NotSame(first, other);
        Assert.NotSame(first, otherTenant);
        Assert.Equal(3, limits.Count);

        Assert.True(limits.TryTake(first, RateKind.History, out _));
        Assert.False(limits.TryTake(second, RateKind.History, out _)); // the same bucket
        Assert.True(limits.TryTake(other, RateKind.History, out _));
        Assert.True(limits.TryTake(otherTenant, RateKind.History, out _));

        limits.Release("t1", "alice");
        Assert.Equal(3, limits.Count); // one session left
        Assert.False(limits.TryTake(second, RateKind.History, out _));

        limits.Release("t1", "alice");
        Assert.Equal(2, limits.Count);

        // A new session starts with full buckets.
        var again = limits.Acquire("t1", "alice");
        Assert.NotSame(first, again);
        Assert.True(limits.TryTake(again, RateKind.History, out _));
        limits.Release("t1", "alice");
        limits.Release("t1", "bob");
        limits.Release("t2", "alice");
        Assert.Equal(0, limits.Count);
    }

    [Fact]
    public void Concurrent_takes_never_exceed_the_burst()
    {
        var clock = new ManualClock();
        var limits = new UserLimits(new GatewayOptions { SendsPerSecond = 0.001, SendBurst = 1000 }, clock);
        var user = limits.Acquire("t1", "alice");
        var taken = 0;
        Parallel.For(0, 4, worker =>
        {
            for (var i = 0; i < 1000; i++)
            {
                if (limits.TryTake(user, RateKind.Send, out _))
                {
                    Interlocked.Increment(ref taken);
                }
            }
        });
        Assert.Equal(1000, taken);
        limits.Release("t1", "alice");
    }
}
