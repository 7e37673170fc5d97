using System.Security.Cryptography.X509Certificates;

namespace Gateway.Server.Connections;

/// <summary>Loads the WebSocket listener's certificate from <see cref="TlsOptions"/>.</summary>
internal static class TlsCertificateLoader
{
    /// <summary>
    /// Loads a PKCS#12 file (with <see cref="TlsOptions.Password"/>) or a PEM certificate with its key (from
    /// <see cref="TlsOptions.KeyPath"/>, or from the certificate file itself when no key path is given). The format is
    /// told by content, not by file name: PEM is text that contains "-----BEGIN".
    /// </summary>
    /// <exception cref="InvalidOperationException">The files cannot be read or the certificate has no private key.</exception>
    public static X509Certificate2 Load(TlsOptions tls)
    {
        var path = tls.CertificatePath ?? throw new InvalidOperationException("Gateway:Tls:CertificatePath is not set.");
        try
        {
            var certificate = IsPem(path)
                ? LoadPem(path, string.IsNullOrWhiteSpace(tls.KeyPath) ? null : tls.KeyPath, tls.Password)
                : X509CertificateLoader.LoadPkcs12FromFile(path, tls.Password);
            if (!certificate.HasPrivateKey)
            {
                certificate.Dispose();
                throw new InvalidOperationException($"The certificate in '{path}' has no private key (set Gateway:Tls:KeyPath for PEM).");
            }

            return certificate;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            throw new InvalidOperationException($"Cannot load the TLS certificate '{path}': {e.Message}", e);
        }
    }

    private static X509Certificate2 LoadPem(string certificatePath, string? keyPath, string? password) =>
        string.IsNullOrEmpty(password)
            ? X509Certificate2.CreateFromPemFile(certificatePath, keyPath)
            : X509Certificate2.CreateFromEncryptedPemFile(certificatePath, password, keyPath);

    private static bool IsPem(string path)
    {
        // The armour line is within the first few hundred bytes of any PEM file (explanatory text may precede it);
        // DER-encoded PKCS#12 starts with a SEQUENCE tag (0x30) and is not text.
        Span<byte> head = stackalloc byte[512];
        using var file = File.OpenRead(path);
        int read = file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        return head[..read].IndexOf("-----BEGIN"u8) >= 0;
    }
}
