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

/// <summary>
/// The WebSocket listener's certificate, reloaded when its files change: Kestrel asks <see cref="Current"/> for every new
/// TLS handshake (<c>ServerCertificateSelector</c>), so a renewed certificate serves new connections at once while open
/// connections, whose handshakes are done, keep theirs and are not dropped. A file-system watcher on the files'
/// directories notices most changes at once; a periodic check of the files' timestamps and sizes catches what watchers
/// miss (Kubernetes swaps a mounted secret through a symlink; network file systems raise no events). A file that does not
/// load (half written, a key that does not match) leaves the current certificate in place and is tried again on the next
/// change or check.
/// </summary>
internal sealed class TlsCertificateReloader : IHostedService, IDisposable
{
    private readonly TlsOptions _tls;
    private readonly TimeProvider _time;
    private readonly List<FileSystemWatcher> _watchers = [];
    private readonly Lock _sync = new();
    private X509Certificate2 _current;
    private string _stamp;
    private ITimer? _timer;
    private ITimer? _debounce;

    /// <summary>Loads the certificate now (start-up fails on a bad one, as before).</summary>
    public TlsCertificateReloader(TlsOptions tls, TimeProvider time)
    {
        _tls = tls;
        _time = time;
        _stamp = Stamp();
        _current = TlsCertificateLoader.Load(tls);
    }

    public ILogger Logger { get; set; } = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    /// <summary>The certificate new TLS handshakes get.</summary>
    public X509Certificate2 Current => Volatile.Read(ref _current);

    /// <summary>Certificates loaded after the first (tests, logs).</summary>
    public int Reloads { get; private set; }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var directory in Files().Select(f => Path.GetDirectoryName(Path.GetFullPath(f))!).Distinct(StringComparer.Ordinal))
        {
            try
            {
                var watcher = new FileSystemWatcher(directory) { IncludeSubdirectories = false, NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime };
                watcher.Changed += (_, _) => Soon();
                watcher.Created += (_, _) => Soon();
                watcher.Renamed += (_, _) => Soon();
                watcher.EnableRaisingEvents = true;
                _watchers.Add(watcher);
            }
            catch (Exception e) when (e is IOException or ArgumentException or PlatformNotSupportedException)
            {
                // Out of inotify instances, say: the periodic check still runs.
                Logger.LogWarning("Cannot watch {Directory} for certificate changes ({Message}); checking every {Seconds} s", directory, e.Message, _tls.ReloadCheckSeconds);
            }
        }

        var period = TimeSpan.FromSeconds(_tls.ReloadCheckSeconds);
        _timer = _time.CreateTimer(static s => ((TlsCertificateReloader)s!).CheckNow(), this, period, period);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    /// <summary>Loads the files again if their timestamps or sizes changed since the last load.</summary>
    public void CheckNow()
    {
        try
        {
            CheckFiles();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // On a timer or watcher thread: an exception here would end the process. The next check retries.
            Logger.LogWarning("Cannot check the TLS certificate files ({Message}); still serving {Subject}", e.Message, _current.Subject);
        }
    }

    private void CheckFiles()
    {
        lock (_sync)
        {
            var stamp = Stamp();
            if (string.Equals(stamp, _stamp, StringComparison.Ordinal))
            {
                return;
            }

            X509Certificate2 next;
            try
            {
                next = TlsCertificateLoader.Load(_tls);
            }
            catch (InvalidOperationException e)
            {
                // Probably caught mid-write: keep serving the current certificate; the next event or check retries.
                Logger.LogWarning("TLS certificate changed but does not load yet ({Message}); still serving {Subject} (expires {Expiry:O})",
                    e.Message, _current.Subject, _current.NotAfter.ToUniversalTime());
                return;
            }

            _stamp = stamp;

            // The previous certificate is not disposed: handshakes in progress may still hold it. Renewals are rare.
            Volatile.Write(ref _current, next);
            Reloads++;
            Logger.LogInformation("TLS certificate reloaded from {Path}: {Subject}, expires {Expiry:O}, thumbprint {Thumbprint}",
                _tls.CertificatePath, next.Subject, next.NotAfter.ToUniversalTime(), next.Thumbprint);
        }
    }

    public void Dispose()
    {
        foreach (var watcher in _watchers)
        {
            watcher.Dispose();
        }

        _watchers.Clear();
        _timer?.Dispose();
        _debounce?.Dispose();
    }

    /// <summary>Watchers fire several events per write, the first often before the write is complete: check a moment later.</summary>
    private void Soon()
    {
        lock (_sync)
        {
            _debounce?.Dispose();
            _debounce = _time.CreateTimer(static s => ((TlsCertificateReloader)s!).CheckNow(), this, TimeSpan.FromMilliseconds(500), Timeout.InfiniteTimeSpan);
        }
    }

    private IEnumerable<string> Files() =>
        string.IsNullOrWhiteSpace(_tls.KeyPath) ? [_tls.CertificatePath!] : [_tls.CertificatePath!, _tls.KeyPath];

    /// <summary>Timestamp and size of each file, through symlinks (a mounted secret's files are links to its current version).</summary>
    private string Stamp() => string.Join("|", Files().Select(f =>
    {
        var info = new FileInfo(f);
        if (info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is FileInfo target)
        {
            info = target;
        }

        return info.Exists ? $"{info.FullName}:{info.LastWriteTimeUtc.Ticks}:{info.Length}" : "missing";
    }));
}
