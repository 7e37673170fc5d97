using Gateway.Server.Connections;
using Gateway.Server.Sessions;

namespace Gateway.Server.Tests;

/// <summary>Per-user rate limits: one bucket per kind, kept in the user's connection-limiter entry, so shared by the
/// user's connections and dropped with the last one.</summary>
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
        var user = new ConnectionLimiter.User();
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
    }

    [Fact]
    public void A_users_connections_share_the_buckets_and_the_last_release_forgets_them()
    {
        var clock = new ManualClock();
        var limits = Create(clock);
        using var limiter = new ConnectionLimiter(new GatewayOptions { MaxConnectionsPerUser = 0 }, clock);
        Assert.True(limiter.TryAdmitUser("t1", "alice", out var first));
        Assert.True(limiter.TryAdmitUser("t1", "alice", out var second));
        Assert.True(limiter.TryAdmitUser("t1", "bob", out var other));
        Assert.True(limiter.TryAdmitUser("t2", "alice", out var otherTenant));
        Assert.Same(first, second);
        Assert.NotSame(first, other);
        Assert.NotSame(first, otherTenant);

        Assert.True(limits.TryTake(first, RateKind.History, out _));
        Assert.False(limits.TryTake(second, RateKind.History, out _)); // the same bucket
        Assert.True(limits.TryTake(other, RateKind.History, out _));
        Assert.True(limits.TryTake(otherTenant, RateKind.History, out _));

        limiter.ReleaseUser("t1", "alice");
        Assert.Equal(3, limiter.TrackedUsers); // one connection left, its bucket still empty
        Assert.True(limiter.TryAdmitUser("t1", "alice", out var third));
        Assert.Same(first, third);
        Assert.False(limits.TryTake(third, RateKind.History, out _));

        limiter.ReleaseUser("t1", "alice");
        limiter.ReleaseUser("t1", "alice");
        Assert.Equal(2, limiter.TrackedUsers);

        // A new connection after the last one starts with full buckets.
        Assert.True(limiter.TryAdmitUser("t1", "alice", out var again));
        Assert.NotSame(first, again);
        Assert.True(limits.TryTake(again, RateKind.History, out _));
        limiter.ReleaseUser("t1", "alice");
        limiter.ReleaseUser("t1", "bob");
        limiter.ReleaseUser("t2", "alice");
        Assert.Equal(0, limiter.TrackedUsers);
    }

    [Fact]
    public void Concurrent_takes_never_exceed_the_burst()
    {
        var clock = new ManualClock();
        var limits = new UserLimits(new GatewayOptions { SendsPerSecond = 0.001, SendBurst = 1000 }, clock);
        var user = new ConnectionLimiter.User();
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
    }
}
