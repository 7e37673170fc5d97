using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Gateway.Tools.Common;

/// <summary>Bearer tokens for load users, minted by the tool itself so no token round trip is on the connect path.</summary>
public static class Tokens
{
    /// <summary>An HS256 JWT with <c>sub</c>, <c>tid</c>, <c>iat</c>, <c>nbf</c> (now − 5 s), <c>exp</c>: what the
    /// server's token command mints.</summary>
    public static string Mint(byte[] key, string tenant, string userId, TimeSpan lifetime)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var claims = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["sub"] = userId,
            ["tid"] = tenant,
            ["iat"] = now,
            ["nbf"] = now - 5,
            ["exp"] = now + (long)lifetime.TotalSeconds,
        });
        var signingInput = Base64Url("""{"alg":"HS256","typ":"JWT"}"""u8) + "." + Base64Url(claims);
        var signature = HMACSHA256.HashData(key, Encoding.ASCII.GetBytes(signingInput));
        return signingInput + "." + Base64Url(signature);
    }

    private static string Base64Url(ReadOnlySpan<byte> bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
