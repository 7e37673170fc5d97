using Gateway.Server.Auth;
using Microsoft.Extensions.DependencyInjection;

namespace Gateway.Server.Tests;

/// <summary>Tenant ids decoded from tokens share one string per tenant (every connection keeps its tenant id), up to a cap.</summary>
public sealed class TenantSharingTests
{
    [Fact]
    public async Task Tokens_of_one_tenant_yield_one_tenant_string_and_the_cache_is_bounded()
    {
        await using var gw = await TestGateway.StartAsync();
        var auth = gw.Services.GetRequiredService<JwtAuthenticator>();
        // Local keys only: validation completes synchronously.
        Principal Validate(string user, string tenant)
        {
            var validation = auth.ValidateAsync(gw.Token(user, tenant));
            Assert.True(validation.IsCompletedSuccessfully);
            var (principal, failure) = validation.Result;
            return principal ?? throw new Xunit.Sdk.XunitException(failure);
        }

        var alice = Validate("alice", "t1");
        var bob = Validate("bob", "t1");
        var carol = Validate("carol", "t2");
        Assert.Equal("t1", alice.TenantId);
        Assert.Same(alice.TenantId, bob.TenantId);
        Assert.Equal("t2", carol.TenantId);
        Assert.Same(carol.TenantId, Validate("dave", "t2").TenantId);

        // Fill the cache (two tenants are in it already); a tenant past the cap is still right, only not shared.
        for (var i = 2; i < JwtAuthenticator.MaxSharedTenants; i++)
        {
            Validate("u", $"fill{i}");
        }

        var first = Validate("erin", "late");
        var second = Validate("frank", "late");
        Assert.Equal("late", first.TenantId);
        Assert.Equal("late", second.TenantId);
        Assert.NotSame(first.TenantId, second.TenantId);
        Assert.Same(alice.TenantId, Validate("grace", "t1").TenantId);
    }
}
