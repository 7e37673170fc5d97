using System.Security.Cryptography;
using Gateway.Protocol;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Gateway.Server.Tests;

/// <summary>Production key setups: RS256 from a PEM public key file, ES256 from a JWKS file.</summary>
public sealed class AuthTests
{
    private static string Mint(SecurityKey key, string algorithm, string user, TimeSpan lifetime) =>
        new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Claims = new Dictionary<string, object> { ["sub"] = user, ["tid"] = "t1" },
            Expires = DateTime.UtcNow + lifetime,
            Issuer = "https://idp.example",
            SigningCredentials = new SigningCredentials(key, algorithm),
        });

    private static async Task<int> HandshakeStatusAsync(Uri ws, string token)
    {
        using var socket = new System.Net.WebSockets.ClientWebSocket();
        socket.Options.AddSubProtocol(ProtocolConstants.SubProtocol);
        socket.Options.SetRequestHeader("Authorization", "Bearer " + token);
        socket.Options.CollectHttpResponseDetails = true;
        try
        {
            await socket.ConnectAsync(ws, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
            return (int)socket.HttpStatusCode;
        }
        catch (System.Net.WebSockets.WebSocketException)
        {
            return (int)socket.HttpStatusCode;
        }
    }

    [Fact]
    public async Task Rs256_tokens_are_checked_against_a_pem_public_key_and_the_issuer()
    {
        using var rsa = RSA.Create(2048);
        var dir = TestGateway.NewTempDirectory();
        var pem = Path.Combine(dir, "idp-public.pem");
        await File.WriteAllTextAsync(pem, rsa.ExportSubjectPublicKeyInfoPem());
        await using var gw = await TestGateway.StartAsync(null,
            $"--Gateway:Auth:PublicKeyFiles:0={pem}", "--Gateway:Auth:Issuer=https://idp.example");
        var key = new RsaSecurityKey(rsa);

        await using var alice = await WsClient.ConnectAsync(gw.WebSocketUri, Mint(key, SecurityAlgorithms.RsaSha256, "alice", TimeSpan.FromHours(1)));
        Assert.Equal("alice", alice.Hello.UserId);

        // Another key, an expired token, and the development HS256 key (not configured here) are all refused.
        using var other = RSA.Create(2048);
        Assert.Equal(401, await HandshakeStatusAsync(gw.WebSocketUri, Mint(new RsaSecurityKey(other), SecurityAlgorithms.RsaSha256, "alice", TimeSpan.FromHours(1))));
        Assert.Equal(401, await HandshakeStatusAsync(gw.WebSocketUri, Mint(key, SecurityAlgorithms.RsaSha256, "alice", TimeSpan.FromMinutes(-5))));
        Assert.Equal(401, await HandshakeStatusAsync(gw.WebSocketUri, Mint(new SymmetricSecurityKey(new byte[32]), SecurityAlgorithms.HmacSha256, "alice", TimeSpan.FromHours(1))));
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public async Task Es256_tokens_are_checked_against_a_jwks_file()
    {
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var key = new ECDsaSecurityKey(ec) { KeyId = "k1" };
        var jwk = JsonWebKeyConverter.ConvertFromECDsaSecurityKey(key);
        var dir = TestGateway.NewTempDirectory();
        var jwks = Path.Combine(dir, "jwks.json");
        var publicOnly = new { keys = new[] { new { kty = jwk.Kty, crv = jwk.Crv, x = jwk.X, y = jwk.Y, kid = jwk.Kid, use = "sig", alg = "ES256" } } };
        await File.WriteAllTextAsync(jwks, System.Text.Json.JsonSerializer.Serialize(publicOnly));
        await using var gw = await TestGateway.StartAsync(null, $"--Gateway:Auth:JwksFile={jwks}");

        await using var bob = await WsClient.ConnectAsync(gw.WebSocketUri, Mint(key, SecurityAlgorithms.EcdsaSha256, "bob", TimeSpan.FromHours(1)));
        Assert.Equal("bob", bob.Hello.UserId);

        using var stranger = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        Assert.Equal(401, await HandshakeStatusAsync(gw.WebSocketUri,
            Mint(new ECDsaSecurityKey(stranger) { KeyId = "k1" }, SecurityAlgorithms.EcdsaSha256, "bob", TimeSpan.FromHours(1))));
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public async Task Validation_completes_synchronously_so_the_inline_paths_never_block_on_it()
    {
        // JwtAuthenticator reads the library's task without waiting; a refusal here would mean it stopped completing inline.
        var key = new byte[32];
        RandomNumberGenerator.Fill(key);
        var auth = new Gateway.Server.Auth.JwtAuthenticator(
            Microsoft.Extensions.Options.Options.Create(new AuthOptions { SigningKey = Convert.ToBase64String(key) }),
            Microsoft.Extensions.Options.Options.Create(new GatewayOptions()));
        var signing = auth.SigningKey!;
        var other = new SymmetricSecurityKey(RandomNumberGenerator.GetBytes(32));
        using var rsa = RSA.Create(2048);
        string[] tokens =
        [
            Gateway.Server.Auth.JwtAuthenticator.Mint(signing, "t1", "alice", TimeSpan.FromMinutes(5)),
            Mint(signing, SecurityAlgorithms.HmacSha256, "alice", TimeSpan.FromMinutes(-10)),
            Gateway.Server.Auth.JwtAuthenticator.Mint(other, "t1", "alice", TimeSpan.FromMinutes(5)),
            Mint(new RsaSecurityKey(rsa), SecurityAlgorithms.RsaSha256, "alice", TimeSpan.FromMinutes(5)),
            "not.a.jwt",
        ];

        foreach (var token in tokens)
        {
            Assert.True(auth.StartValidation(token).IsCompleted, token);
            Assert.True(auth.ValidateAsync(token).IsCompletedSuccessfully, token);
        }

        Assert.NotNull((await auth.ValidateAsync(tokens[0])).Principal);
        Assert.Null((await auth.ValidateAsync(tokens[1])).Principal);
    }
}
