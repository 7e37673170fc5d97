using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Gateway.Protocol;

namespace Gateway.Server.Tests;

/// <summary>The TLS certificate is reloaded when its file changes: new connections get the new certificate, open ones keep
/// working.</summary>
public sealed class TlsReloadTests
{
    [Fact]
    public async Task A_replaced_certificate_file_serves_new_connections_while_the_old_connection_keeps_working()
    {
        var dir = TestGateway.NewTempDirectory();
        using var first = CreateSelfSigned("CN=first");
        using var second = CreateSelfSigned("CN=second");
        var pfx = Path.Combine(dir, "gateway.pfx");
        await File.WriteAllBytesAsync(pfx, first.Export(X509ContentType.Pfx, "pw"));

        await using var gw = await TestGateway.StartAsync(null, $"--Gateway:Tls:CertificatePath={pfx}", "--Gateway:Tls:Password=pw",
            "--Gateway:Tls:ReloadCheckSeconds=1");
        await gw.CreateChatAsync("c1", "alice", "bob");
        Assert.Equal(first.Thumbprint, await ServedThumbprintAsync(gw.WebSocketUri));
        await using var alice = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"), new ConnectSettings(TrustedCertificate: first));

        // Replace the file the way a certificate manager does: write aside, then rename over it.
        await File.WriteAllBytesAsync(pfx + ".new", second.Export(X509ContentType.Pfx, "pw"));
        File.Move(pfx + ".new", pfx, overwrite: true);

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (await ServedThumbprintAsync(gw.WebSocketUri) != second.Thumbprint)
        {
            Assert.True(DateTime.UtcNow < deadline, "the new certificate was not served within 30 s");
            await Task.Delay(100);
        }

        // A new client that trusts only the new certificate connects; one that trusts only the old one no longer can.
        await using var bob = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("bob"), new ConnectSettings(TrustedCertificate: second));
        await Assert.ThrowsAsync<WebSocketException>(() => WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"), new ConnectSettings(TrustedCertificate: first)));

        // The connection made with the old certificate was not dropped.
        var request = await alice.SendTextAsync("c1", "still connected");
        var ack = await alice.ReceiveAsync<SendAckFrame>();
        Assert.Equal(request, ack.RequestId);
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public async Task A_file_that_does_not_load_keeps_the_current_certificate()
    {
        var dir = TestGateway.NewTempDirectory();
        using var first = CreateSelfSigned("CN=first");
        var pfx = Path.Combine(dir, "gateway.pfx");
        await File.WriteAllBytesAsync(pfx, first.Export(X509ContentType.Pfx, "pw"));
        await using var gw = await TestGateway.StartAsync(null, $"--Gateway:Tls:CertificatePath={pfx}", "--Gateway:Tls:Password=pw",
            "--Gateway:Tls:ReloadCheckSeconds=1");
        var reloader = (Connections.TlsCertificateReloader)gw.Services.GetService(typeof(Connections.TlsCertificateReloader))!;

        // Half a file, as a reader racing a writer would see it.
        var bytes = first.Export(X509ContentType.Pfx, "pw");
        await File.WriteAllBytesAsync(pfx, bytes[..(bytes.Length / 2)]);
        reloader.CheckNow();
        Assert.Equal(0, reloader.Reloads);
        Assert.Equal(first.Thumbprint, await ServedThumbprintAsync(gw.WebSocketUri));
        Directory.Delete(dir, recursive: true);
    }

    /// <summary>The thumbprint of the certificate a fresh TLS handshake gets.</summary>
    private static async Task<string> ServedThumbprintAsync(Uri uri)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, uri.Port);
        string? thumbprint = null;
        await using var tls = new SslStream(tcp.GetStream(), false, (_, certificate, _, _) =>
        {
            thumbprint = certificate is null ? null : new X509Certificate2(certificate).Thumbprint;
            return true;
        });
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost" });
        return thumbprint!;
    }

    private static X509Certificate2 CreateSelfSigned(string subject)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddDays(-1), now.AddDays(1));
    }
}
