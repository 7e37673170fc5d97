using Gateway.Protocol;
using Gateway.WebSockets;

namespace Gateway.Server.Connections;

/// <summary>
/// Graceful drain on host stop: readiness turns 503, new connections are refused, every open session gets a
/// <c>Drain</c> frame with its own reconnect delay, sessions keep being served for <see cref="GatewayOptions.DrainGraceSeconds"/>,
/// then the ones still open are closed with 1001 "server draining".
/// </summary>
/// <remarks>
/// <para><b>Ordering.</b> The host calls <see cref="StoppingAsync"/> (an <see cref="IHostedLifecycleService"/> step) before
/// any hosted service's <c>StopAsync</c>, so the drain runs while Kestrel still serves and the write service still
/// commits; Kestrel stops afterwards and the container disposes the write service last. A drain started by
/// <see cref="IHostApplicationLifetime.ApplicationStopping"/> (SIGTERM) first is the same drain: <see cref="BeginDrain"/>
/// is idempotent. The host's shutdown timeout (grace + 5 s) bounds the whole of it.</para>
/// <para><b>No connection missed, none told twice.</b> The registry and the draining flag share one lock: a session
/// registered before the flag flips is in the snapshot the drain notifies; one registered after sees the flag and is
/// notified by <see cref="Register"/> itself. The same holds for the final closes: once <see cref="DrainAsync"/> has
/// closed the sessions left after the grace (or was cut short by the shutdown timeout), a session that registers later
/// (it passed admission just before the drain began) is closed by <see cref="Register"/> at once.</para>
/// <para><b>Why here and not on Kestrel's <c>ConnectionClosedRequested</c>.</b> Kestrel asks every connection to close
/// when it stops, but a registration on that per-connection token costs each open connection a callback list and node
/// (≈ 144 B). This registry already holds every open session, so closing the late ones here costs nothing per
/// connection; whatever is still open when the host's shutdown timeout ends is aborted by Kestrel.</para>
/// </remarks>
internal sealed class DrainCoordinator : IHostedLifecycleService
{
    /// <summary>Text of the Drain frame and reason of the final 1001 close.</summary>
    internal const string Reason = "server draining";

    /// <summary>Reason of the 1001 close of a session that registers after the drain has closed the others.</summary>
    internal const string ShutdownReason = "server shutting down";

    private readonly object _sync = new();
    private readonly HashSet<WebSocketConnection> _connections = new(ReferenceEqualityComparer.Instance);
    private readonly TaskCompletionSource _allClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TimeSpan _grace;
    private readonly double _jitterMs;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private long _startedAt;
    private int _draining;

    // Guarded by _sync: set once the drain has closed the sessions left after the grace.
    private bool _closedAll;

    public DrainCoordinator(GatewayOptions options, TimeProvider time, ILogger<DrainCoordinator> logger)
    {
        _grace = TimeSpan.FromSeconds(Math.Max(0, options.DrainGraceSeconds));
        _jitterMs = Math.Max(0, options.DrainJitterSeconds) * 1000;
        _time = time;
        _logger = logger;
    }

    /// <summary>True from the moment the drain starts: readiness answers 503 and new connections are refused.</summary>
    public bool IsDraining => Volatile.Read(ref _draining) != 0;

    /// <summary>Open sessions (for tests and diagnostics).</summary>
    internal int Count
    {
        get
        {
            lock (_sync)
            {
                return _connections.Count;
            }
        }
    }

    /// <summary>Frames queued to the open sessions' sockets, all together (<c>gateway.outbound.queued</c>; read at scrape
    /// time, so the hot path keeps its per-connection counters only).</summary>
    internal long FramesQueued()
    {
        long total = 0;
        lock (_sync)
        {
            foreach (var connection in _connections)
            {
                total += connection.FramesQueued;
            }
        }

        return total;
    }

    /// <summary>Tracks an open session until the registration is disposed. Call after Hello was enqueued, so a Drain
    /// frame never precedes it.</summary>
    public Registration Register(WebSocketConnection connection)
    {
        bool draining, closedAll;
        lock (_sync)
        {
            _connections.Add(connection);
            draining = _draining != 0;
            closedAll = _closedAll;
        }

        if (draining)
        {
            SendDrain(connection);
        }

        if (closedAll)
        {
            // Admitted just before the drain began, registered after its last closes: nobody else will close it.
            connection.Close(CloseCodes.GoingAway, ShutdownReason);
        }

        return new Registration(this, connection);
    }

    /// <summary>Starts the drain (idempotent): flips readiness and sends every open session its Drain frame.</summary>
    public void BeginDrain()
    {
        WebSocketConnection[] snapshot;
        lock (_sync)
        {
            if (_draining != 0)
            {
                return;
            }

            _startedAt = _time.GetTimestamp();
            Volatile.Write(ref _draining, 1);
            snapshot = [.. _connections];
            if (snapshot.Length == 0)
            {
                _allClosed.TrySetResult();
            }
        }

        _logger.LogInformation("Draining {Count} connections: clients reconnect within {Jitter} ms; the rest are closed in {Grace}",
            snapshot.Length, _jitterMs, _grace);
        foreach (var connection in snapshot)
        {
            SendDrain(connection);
        }
    }

    /// <summary>Runs the whole drain: <see cref="BeginDrain"/>, wait until every session has gone or the grace has elapsed,
    /// close the rest with 1001, and wait for those closes to finish (each bounded by the WebSocket close timeout).</summary>
    /// <param name="cancellationToken">The host's shutdown timeout; when it fires the drain stops waiting.</param>
    public async Task DrainAsync(CancellationToken cancellationToken)
    {
        BeginDrain();
        var remaining = _grace - _time.GetElapsedTime(Volatile.Read(ref _startedAt));
        bool allLeft = await WaitAllClosedAsync(remaining, cancellationToken).ConfigureAwait(false);

        // From here on nobody is left to be told: the ones still open are closed now, and Register closes any later one.
        WebSocketConnection[] rest;
        lock (_sync)
        {
            rest = [.. _connections];
            _closedAll = true;
        }

        if (allLeft)
        {
            // Every session drained in time; any here registered after the last one left (admitted just before the drain).
            foreach (var connection in rest)
            {
                connection.Close(CloseCodes.GoingAway, ShutdownReason);
            }

            _logger.LogInformation("Drain complete: every connection left within the grace, after {Elapsed:0.0} s",
                _time.GetElapsedTime(Volatile.Read(ref _startedAt)).TotalSeconds);
            return;
        }

        _logger.LogInformation("Drain grace over: closing {Count} connections with 1001", rest.Length);
        foreach (var connection in rest)
        {
            connection.Close(CloseCodes.GoingAway, Reason);
        }

        var closed = await WaitAllClosedAsync(Timeout.InfiniteTimeSpan, cancellationToken).ConfigureAwait(false);
        _logger.LogInformation(closed ? "Drain complete after {Elapsed:0.0} s" : "Drain cut short by the shutdown timeout after {Elapsed:0.0} s",
            _time.GetElapsedTime(Volatile.Read(ref _startedAt)).TotalSeconds);
    }

    /// <inheritdoc/>
    public Task StoppingAsync(CancellationToken cancellationToken) => DrainAsync(cancellationToken);

    /// <inheritdoc/>
    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc/>
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc/>
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc/>
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc/>
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private async Task<bool> WaitAllClosedAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (timeout <= TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
        {
            return _allClosed.Task.IsCompleted;
        }

        try
        {
            await _allClosed.Task.WaitAsync(timeout, _time, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            return false;
        }
    }

    private void SendDrain(WebSocketConnection connection)
    {
        // Uniform in [0, jitter]: the reconnects of N clients spread evenly over the window instead of arriving together.
        var delayMs = (uint)Math.Round(Random.Shared.NextDouble() * _jitterMs);
        var frame = OutboundFrame.Rent(64);
        try
        {
            ServerFrameWriter.WriteDrain(frame, delayMs, Reason);
            if (!connection.TryEnqueue(frame.Seal()))
            {
                // A full queue (or one already closing): this client would not read the notice in time anyway.
                connection.Close(CloseCodes.GoingAway, Reason);
            }
        }
        finally
        {
            frame.Release();
        }
    }

    private void Unregister(WebSocketConnection connection)
    {
        lock (_sync)
        {
            if (_connections.Remove(connection) && _connections.Count == 0 && _draining != 0)
            {
                _allClosed.TrySetResult();
            }
        }
    }

    /// <summary>Ends the tracking of one session.</summary>
    internal readonly struct Registration(DrainCoordinator owner, WebSocketConnection connection) : IDisposable
    {
        /// <inheritdoc/>
        public void Dispose() => owner?.Unregister(connection);
    }
}
