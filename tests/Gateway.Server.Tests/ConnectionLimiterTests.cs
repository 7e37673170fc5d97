using System.Net;
using Gateway.Server.Connections;

namespace Gateway.Server.Tests;

/// <summary>Per-address and per-user accounting, and that its tables forget idle keys.</summary>
public sealed class ConnectionLimiterTests
{
    private static readonly IPAddress A = IPAddress.Parse("10.0.0.1");
    private static readonly IPAddress B = IPAddress.Parse("10.0.0.2");

    private static ConnectionLimiter Create(int perIp = 2, int perUser = 2, double rate = 0.01, int burst = 100) =>
        new(new GatewayOptions { MaxConnectionsPerIp = perIp, MaxConnectionsPerUser = perUser, HandshakesPerSecondPerIp = rate, HandshakeBurstPerIp = burst },
            TimeProvider.System);

    [Fact]
    public void Address_cap_counts_open_connections_and_frees_on_release()
    {
        using var limiter = Create(perIp: 2);
        Assert.Equal(AddressAdmission.Admitted, limiter.TryAdmitAddress(A, out _));
        Assert.Equal(AddressAdmission.Admitted, limiter.TryAdmitAddress(A, out _));
        Assert.Equal(AddressAdmission.TooManyConnections, limiter.TryAdmitAddress(A, out _));
        Assert.Equal(AddressAdmission.Admitted, limiter.TryAdmitAddress(B, out _));

        limiter.ReleaseAddress(A);
        Assert.Equal(AddressAdmission.Admitted, limiter.TryAdmitAddress(A, out _));
        Assert.Equal(AddressAdmission.TooManyConnections, limiter.TryAdmitAddress(A, out _));
    }

    [Fact]
    public void Handshake_rate_refuses_over_the_burst_with_a_retry_hint()
    {
        // 0.01/s: no token comes back while the test runs.
        using var limiter = Create(perIp: 0, rate: 0.01, burst: 3);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(AddressAdmission.Admitted, limiter.TryAdmitAddress(A, out _));
        }

        Assert.Equal(AddressAdmission.RateLimited, limiter.TryAdmitAddress(A, out var retryAfter));
        Assert.InRange(retryAfter, TimeSpan.FromSeconds(90), TimeSpan.FromSeconds(100)); // one token per 100 s
        Assert.Equal(AddressAdmission.Admitted, limiter.TryAdmitAddress(B, out _));
    }

    [Fact]
    public void Idle_addresses_leave_the_table_once_their_bucket_is_full()
    {
        // One token per 100 s: the bucket cannot refill by itself while the test runs.
        using var limiter = Create(perIp: 10, rate: 0.01, burst: 5);
        Assert.Equal(AddressAdmission.Admitted, limiter.TryAdmitAddress(A, out _));
        Assert.Equal(AddressAdmission.Admitted, limiter.TryAdmitAddress(B, out _));
        Assert.Equal(2, limiter.TrackedAddresses);

        // A connection ended, but the bucket still remembers the attempt: kept (the rate limit must survive it).
        limiter.ReleaseAddress(A);
        limiter.Sweep();
        Assert.Equal(2, limiter.TrackedAddresses);

        // Once the bucket is full again (100 s later), the sweep drops it; B still has a connection open and stays.
        limiter.Sweep(TokenBucket.GetTicks(TimeProvider.System) + TimeSpan.TicksPerHour);
        Assert.Equal(1, limiter.TrackedAddresses);

        // A fresh entry behaves like a fresh bucket.
        Assert.Equal(AddressAdmission.Admitted, limiter.TryAdmitAddress(A, out _));
        limiter.ReleaseAddress(A);
        limiter.ReleaseAddress(B);
        limiter.Sweep(TokenBucket.GetTicks(TimeProvider.System) + TimeSpan.TicksPerHour);
        Assert.Equal(0, limiter.TrackedAddresses);
    }

    [Fact]
    public void Without_a_rate_limit_an_address_leaves_the_table_with_its_last_connection()
    {
        using var limiter = Create(perIp: 2, rate: 0);
        Assert.Equal(AddressAdmission.Admitted, limiter.TryAdmitAddress(A, out _));
        Assert.Equal(1, limiter.TrackedAddresses);
        limiter.ReleaseAddress(A);
        Assert.Equal(0, limiter.TrackedAddresses);
    }

    [Fact]
    public void User_cap_is_per_tenant_and_user_and_the_table_empties()
    {
        using var limiter = Create(perUser: 2);
        Assert.True(limiter.TryAdmitUser("t1", "alice", out _));
        Assert.True(limiter.TryAdmitUser("t1", "alice", out _));
        Assert.False(limiter.TryAdmitUser("t1", "alice", out _));
        Assert.True(limiter.TryAdmitUser("t2", "alice", out _));
        Assert.True(limiter.TryAdmitUser("t1", "bob", out _));

        limiter.ReleaseUser("t1", "alice");
        Assert.True(limiter.TryAdmitUser("t1", "alice", out _));

        limiter.ReleaseUser("t1", "alice");
        limiter.ReleaseUser("t1", "alice");
        limiter.ReleaseUser("t2", "alice");
        limiter.ReleaseUser("t1", "bob");
        Assert.Equal(0, limiter.TrackedUsers);
    }

    [Fact]
    public async Task Concurrent_admits_and_releases_never_exceed_the_cap_and_leave_nothing_behind()
    {
        using var limiter = Create(perIp: 3, perUser: 3, rate: 0);
        var open = 0;
        var maxSeen = 0;
        var workers = Enumerable.Range(0, 4).Select(w => Task.Run(() =>
        {
            for (var i = 0; i < 20_000; i++)
            {
                if (limiter.TryAdmitAddress(A, out _) == AddressAdmission.Admitted)
                {
                    var now = Interlocked.Increment(ref open);
                    InterlockedMax(ref maxSeen, now);
                    Interlocked.Decrement(ref open);
                    limiter.ReleaseAddress(A);
                }

                if (limiter.TryAdmitUser("t1", "u", out _))
                {
                    limiter.ReleaseUser("t1", "u");
                }
            }
        })).ToArray();
        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.InRange(maxSeen, 1, 3);
        Assert.Equal(0, limiter.TrackedAddresses);
        Assert.Equal(0, limiter.TrackedUsers);
    }

    [Fact]
    public void Ipv4_mapped_addresses_count_as_ipv4()
    {
        Assert.Equal(A, ConnectionLimiter.Normalize(A.MapToIPv6()));
        Assert.Equal(IPAddress.IPv6Loopback, ConnectionLimiter.Normalize(IPAddress.IPv6Loopback));
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
