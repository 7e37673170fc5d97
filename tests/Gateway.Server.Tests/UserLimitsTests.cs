using Gateway.Server.Connections;
using Gateway.Server.Sessions;
using Microsoft.Extensions.Time.Testing;

namespace Gateway.Server.Tests;

/// <summary>Per-user rate limits: one bucket per kind, kept in the user's connection-limiter entry, so shared by the
/// user's connections and HTTP requests, and dropped once no connection is open and every bucket is full.</summary>
public sealed class UserLimitsTests
{
    private static UserLimits Create(FakeTimeProvider clock) => new(new GatewayOptions
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
        var clock = new FakeTimeProvider();
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

        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.True(limits.TryTake(user, RateKind.Send, out _));
        Assert.False(limits.TryTake(user, RateKind.Send, out _));
    }

    [Fact]
    public void A_users_connections_share_the_buckets_and_the_entry_is_dropped_once_idle_and_full()
    {
        var clock = new FakeTimeProvider();
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

        // The last connection ends while the bucket is empty: reconnecting must not refill it.
        limiter.ReleaseUser("t1", "alice");
        limiter.ReleaseUser("t1", "alice");
        Assert.Equal(3, limiter.TrackedUsers);
        Assert.True(limiter.TryAdmitUser("t1", "alice", out var reconnected));
        Assert.Same(first, reconnected);
        Assert.False(limits.TryTake(reconnected, RateKind.History, out _));
        limiter.ReleaseUser("t1", "alice");

        // Once every bucket is full again the entry says nothing a fresh one would not: the sweep drops it.
        clock.Advance(TimeSpan.FromSeconds(1));
        limiter.Sweep();
        Assert.Equal(2, limiter.TrackedUsers);
        Assert.True(limiter.TryAdmitUser("t1", "alice", out var again));
        Assert.NotSame(first, again);
        Assert.True(limits.TryTake(again, RateKind.History, out _));
        limiter.ReleaseUser("t1", "alice");
        limiter.ReleaseUser("t1", "bob");
        limiter.ReleaseUser("t2", "alice");
        clock.Advance(TimeSpan.FromSeconds(1));
        limiter.Sweep();
        Assert.Equal(0, limiter.TrackedUsers);
    }

    [Fact]
    public void A_user_without_a_connection_shares_the_buckets_of_its_connections()
    {
        var clock = new FakeTimeProvider();
        var limits = Create(clock);
        using var limiter = new ConnectionLimiter(new GatewayOptions { MaxConnectionsPerUser = 0 }, clock);

        // Three HTTP sends (burst 3) with no connection open, then the fourth is refused with the wait.
        for (var i = 0; i < 3; i++)
        {
            Assert.True(limiter.TryTakeWithoutConnection("t1", "alice", limits, RateKind.Send, out _));
        }

        Assert.False(limiter.TryTakeWithoutConnection("t1", "alice", limits, RateKind.Send, out var wait));
        Assert.Equal(TimeSpan.FromSeconds(1), wait);
        Assert.Equal(1, limiter.TrackedUsers);
        limiter.Sweep();
        Assert.Equal(1, limiter.TrackedUsers); // the buckets remember the takes

        // A connection of the same user sees the same empty bucket.
        Assert.True(limiter.TryAdmitUser("t1", "alice", out var connection));
        Assert.False(limits.TryTake(connection, RateKind.Send, out _));
        Assert.True(limiter.TryTakeWithoutConnection("t1", "bob", limits, RateKind.Send, out _)); // per user
        limiter.ReleaseUser("t1", "alice");

        clock.Advance(TimeSpan.FromSeconds(3));
        limiter.Sweep();
        Assert.Equal(0, limiter.TrackedUsers);
    }

    [Fact]
    public void Concurrent_takes_never_exceed_the_burst()
    {
        var clock = new FakeTimeProvider();
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
