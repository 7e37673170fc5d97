using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace Gateway.Server.Auth;

/// <summary>
/// Signing keys fetched from a JWKS URL or through OpenID Connect discovery (<see cref="AuthOptions.JwksUrl"/>,
/// <see cref="AuthOptions.Authority"/>): at start, every <see cref="AuthOptions.KeysRefreshSeconds"/>, and when a token
/// names a key id not in the current set (an issuer that rotated in a new key), at most once per
/// <see cref="AuthOptions.KeysMinRefreshSeconds"/> so that tokens with made-up key ids cannot make us hammer the issuer.
/// A failed fetch (an error, or a key set without signing keys) keeps the keys we have; while we have none, it is
/// retried every <see cref="AuthOptions.KeysMinRefreshSeconds"/> (at least every 5 s) instead of waiting a whole period.
/// </summary>
internal sealed class RemoteSigningKeys : IDisposable
{
    /// <summary>How long a validation waits for a fetch it caused before answering with the keys it has.</summary>
    private static readonly TimeSpan ForcedFetchWait = TimeSpan.FromSeconds(5);

    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private readonly HttpDocumentRetriever _retriever;
    private readonly string _address;
    private readonly bool _discovery;
    private readonly TimeSpan _interval;
    private readonly TimeSpan _minForced;
    private readonly TimeProvider _time;
    private readonly Action<IReadOnlyList<SecurityKey>, string?> _apply;
    private readonly Lock _sync = new();
    private Task<bool>? _inflight;
    private bool _forcedBefore;
    private long _lastForced;
    private ITimer? _timer;
    private string _kids = "";
    private int _fetches;

    public RemoteSigningKeys(AuthOptions options, TimeProvider time, Action<IReadOnlyList<SecurityKey>, string?> apply)
    {
        ArgumentNullException.ThrowIfNull(options);
        _discovery = string.IsNullOrEmpty(options.JwksUrl);
        _address = _discovery
            ? options.Authority!.TrimEnd('/') + "/.well-known/openid-configuration"
            : options.JwksUrl!;
        _retriever = new HttpDocumentRetriever(_http) { RequireHttps = options.RequireHttpsMetadata };
        _interval = TimeSpan.FromSeconds(options.KeysRefreshSeconds);
        _minForced = TimeSpan.FromSeconds(options.KeysMinRefreshSeconds);
        _time = time;
        _apply = apply;
    }

    /// <summary>Fetches attempted so far (tests).</summary>
    public int Fetches => Volatile.Read(ref _fetches);

    /// <summary>Whether a fetch has delivered signing keys (readiness: without any, every token is refused).</summary>
    public bool HasKeys => Volatile.Read(ref _kids).Length > 0;

    /// <summary>When the timer fires next after a fetch: the period, or soon while we have no keys at all.</summary>
    private TimeSpan NextDue => HasKeys ? _interval : TimeSpan.FromSeconds(Math.Clamp(_minForced.TotalSeconds, 1, 5));

    public ILogger Logger { get; set; } = NullLogger.Instance;

    /// <summary>The first fetch (bounded), then the periodic refresh.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var first = Refresh();
        try
        {
            await first.WaitAsync(TimeSpan.FromSeconds(15), cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Logger.LogError("No signing keys from {Address} yet: every token is refused until a fetch succeeds", _address);
        }

        _timer = _time.CreateTimer(static s => ((RemoteSigningKeys)s!).Refresh(), this, NextDue, _interval);
    }

    /// <summary>Starts a fetch unless one is running; returns the running one.</summary>
    public Task<bool> Refresh()
    {
        lock (_sync)
        {
            if (_inflight is { IsCompleted: false } running)
            {
                return running;
            }

            return _inflight = Task.Run(FetchAsync);
        }
    }

    /// <summary>
    /// For a token whose key id is not in the current set: fetches now unless a fetch is running or the last such fetch
    /// was less than <see cref="AuthOptions.KeysMinRefreshSeconds"/> ago, and awaits it up to a few seconds. True when a
    /// fetch completed and the caller should validate again.
    /// </summary>
    /// <remarks>Only the caller that started the fetch waits, once per rate-limit window; every other unknown key id
    /// (also while any fetch runs) is refused at once, so made-up key ids cannot pile waiting connections up behind a
    /// slow issuer.</remarks>
    public Task<bool> RefreshForUnknownKeyAsync()
    {
        return TryStartForcedFetch(out var fetch) ? WaitAsync(fetch) : Task.FromResult(false);

        static async Task<bool> WaitAsync(Task<bool> fetch)
        {
            try
            {
                return await fetch.WaitAsync(ForcedFetchWait).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                return false;
            }
        }
    }

    /// <summary>Starts a forced fetch unless one runs or the last one was too recent.</summary>
    private bool TryStartForcedFetch(out Task<bool> fetch)
    {
        lock (_sync)
        {
            var now = _time.GetTimestamp();
            if (_inflight is { IsCompleted: false } || (_forcedBefore && _time.GetElapsedTime(_lastForced, now) < _minForced))
            {
                fetch = Task.FromResult(false);
                return false;
            }

            _forcedBefore = true;
            _lastForced = now;
            fetch = _inflight = Task.Run(FetchAsync);
            return true;
        }
    }

    public void Dispose()
    {
        _timer?.Dispose();
        _http.Dispose();
    }

    private async Task<bool> FetchAsync()
    {
        Interlocked.Increment(ref _fetches);
        try
        {
            IReadOnlyList<SecurityKey> keys;
            string? issuer = null;
            if (_discovery)
            {
                var configuration = await OpenIdConnectConfigurationRetriever.GetAsync(_address, _retriever, CancellationToken.None).ConfigureAwait(false);
                keys = [.. configuration.SigningKeys];
                issuer = configuration.Issuer;
            }
            else
            {
                var json = await _retriever.GetDocumentAsync(_address, CancellationToken.None).ConfigureAwait(false);
                keys = [.. new JsonWebKeySet(json).GetSigningKeys()];
            }

            if (keys.Count == 0)
            {
                // An issuer mid-deployment or a wrong URL: applying it would refuse every token until the next period.
                throw new InvalidOperationException("the key set has no signing keys");
            }

            _apply(keys, issuer);
            var kids = string.Join(",", keys.Select(k => k.KeyId ?? "(no kid)").Order(StringComparer.Ordinal));
            if (!string.Equals(kids, Interlocked.Exchange(ref _kids, kids), StringComparison.Ordinal))
            {
                Logger.LogInformation("Signing keys from {Address}: {Count} ({Kids})", _address, keys.Count, kids);
            }

            Reschedule();
            return true;
        }
        catch (Exception e) when (e is IOException or HttpRequestException or InvalidOperationException or ArgumentException or TaskCanceledException)
        {
            Logger.LogWarning("Cannot fetch signing keys from {Address}: {Message}; keeping the {Count} keys we have", _address, e.Message, _kids.Length == 0 ? 0 : _kids.Split(',').Length);
            Reschedule();
            return false;
        }
    }

    private void Reschedule()
    {
        try
        {
            _timer?.Change(NextDue, _interval);
        }
        catch (ObjectDisposedException)
        {
            // Stopped meanwhile.
        }
    }
}

/// <summary>Runs the first fetch of remote signing keys before the listeners open, and the periodic refresh after.</summary>
internal sealed class RemoteSigningKeysService(JwtAuthenticator authenticator, ILogger<RemoteSigningKeys> logger) : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken)
    {
        if (authenticator.Remote is not { } remote)
        {
            return Task.CompletedTask;
        }

        remote.Logger = logger;
        return remote.StartAsync(cancellationToken);
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken)
    {
        authenticator.Remote?.Dispose();
        return Task.CompletedTask;
    }
}
