using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Gateway.Protocol;

namespace Gateway.Server.Tests;

/// <summary><c>wss://</c> on the WebSocket listener with a self-signed certificate made by the test.</summary>
public sealed class TlsTests
{
    [Fact]
    public async Task Pfx_certificate_serves_wss_and_plain_ws_is_refused()
    {
        var dir = TestGateway.NewTempDirectory();
        using var certificate = CreateSelfSigned();
        var pfx = Path.Combine(dir, "gateway.pfx");
        await File.WriteAllBytesAsync(pfx, certificate.Export(X509ContentType.Pfx, "test-password"));

        await using var gw = await TestGateway.StartAsync(null, $"--Gateway:Tls:CertificatePath={pfx}", "--Gateway:Tls:Password=test-password");
        Assert.Equal("wss", gw.WebSocketUri.Scheme);
        await gw.CreateChatAsync("secure", "alice");

        await using (var alice = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"), new ConnectSettings(TrustedCertificate: certificate)))
        {
            Assert.Equal("alice", alice.Hello.UserId);
            var request = await alice.SendTextAsync("secure", "over tls");
            var ack = await alice.ReceiveAsync<SendAckFrame>();
            Assert.Equal((request, 1UL), (ack.RequestId, ack.Seq));
        }

        // Speaking plaintext to the TLS port fails: the TLS layer never lets the upgrade request through.
        var plain = new UriBuilder(gw.WebSocketUri) { Scheme = "ws" }.Uri;
        await Assert.ThrowsAsync<WebSocketException>(() => WsClient.ConnectAsync(plain, gw.Token("alice")));

        // A client that does not trust the certificate fails too (it is self-signed).
        await Assert.ThrowsAsync<WebSocketException>(() => WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice")));
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public async Task Pem_certificate_and_key_serve_wss()
    {
        var dir = TestGateway.NewTempDirectory();
        using var certificate = CreateSelfSigned();
        var certPath = Path.Combine(dir, "gateway.crt");
        var keyPath = Path.Combine(dir, "gateway.key");
        await File.WriteAllTextAsync(certPath, certificate.ExportCertificatePem());
        using (var key = certificate.GetECDsaPrivateKey()!)
        {
            await File.WriteAllTextAsync(keyPath, key.ExportPkcs8PrivateKeyPem());
        }

        await using var gw = await TestGateway.StartAsync(null, $"--Gateway:Tls:CertificatePath={certPath}", $"--Gateway:Tls:KeyPath={keyPath}");
        await using var alice = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"), new ConnectSettings(TrustedCertificate: certificate));
        Assert.Equal("alice", alice.Hello.UserId);
        Directory.Delete(dir, recursive: true);
    }

    private static X509Certificate2 CreateSelfSigned()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=gateway-test", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false)); // server auth
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddDays(-1), now.AddDays(1));
    }
}
