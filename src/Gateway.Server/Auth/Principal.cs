namespace Gateway.Server.Auth;

/// <summary>Who a valid token says the caller is.</summary>
/// <param name="TenantId">From the tenant claim (<c>tid</c> by default).</param>
/// <param name="UserId">From <c>sub</c>.</param>
/// <param name="ExpiresAt">Token expiry, Unix milliseconds.</param>
public sealed record Principal(string TenantId, string UserId, long ExpiresAt);
