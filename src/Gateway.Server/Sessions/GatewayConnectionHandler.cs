using System.Net;
using Gateway.Protocol;
using Gateway.Server.Auth;
using Gateway.Server.Connections;
using Gateway.WebSockets;
using Microsoft.AspNetCore.Connections;

namespace Gateway.Server.Sessions;

/// <summary>
/// The Kestrel connection handler behind the WebSocket listener. The task returned by
/// <see cref="OnConnectedAsync"/> is the connection's lifetime: admission, handshake, session, close.
/// </summary>
/// <remarks>
/// Admission order, cheapest first: draining (503), the source address's handshake rate and connection cap (429, before
/// the request is read), then the handshake itself: path, subprotocol, Origin (403), token (401), and the user's
/// connection cap (429). Every slot taken is given back when the connection ends, also when the handshake fails.
/// </remarks>
internal sealed class GatewayConnectionHandler : ConnectionHandler
{
    private readonly JwtAuthenticator _auth;
    private readonly SessionServices _services;
    private readonly ConnectionLimiter _limiter;
    private readonly DrainCoordinator _drain;
    private readonly Gateway.WebSockets.WebSocketOptions _wsOptions;
    private readonly HashSet<string> _allowedOrigins;

    public GatewayConnectionHandler(JwtAuthenticator auth, SessionServices services, ConnectionLimiter limiter, DrainCoordinator drain)
    {
        _auth = auth;
        _services = services;
        _limiter = limiter;
        _drain = drain;
        var o = services.Options;
        _wsOptions = new Gateway.WebSockets.WebSocketOptions
        {
            MaxMessageBytes = o.MaxMessageBytes,
            HandshakeTimeout = TimeSpan.FromSeconds(o.HandshakeTimeoutSeconds),
            KeepAliveInterval = TimeSpan.FromSeconds(o.HeartbeatSeconds),
            IdleTimeout = TimeSpan.FromSeconds(o.IdleTimeoutSeconds),
            MaxOutboundFrames = o.MaxOutboundFrames,
            MaxOutboundBytes = o.MaxOutboundBytes,

            // Live Message frames carry their commit time: the delivery lag is recorded when the writer hands them to the socket.
            TimestampedFrameWritten = GatewayMetrics.RecordDeliveryLag,
        };
        _allowedOrigins = new HashSet<string>(o.AllowedOrigins, StringComparer.OrdinalIgnoreCase);
    }

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        // Refusals that need no request come first, before a byte of it is read: a draining server and a source over
        // its handshake rate or connection cap cost one short write.
        if (_drain.IsDraining)
        {
            await RefuseEarlyAsync(connection, 503, DrainCoordinator.Reason, 0).ConfigureAwait(false);
            return;
        }

        // Non-IP transports (Unix sockets, in-memory test transports) have no address to account.
        var address = connection.RemoteEndPoint is IPEndPoint ip ? ConnectionLimiter.Normalize(ip.Address) : null;
        if (address is not null)
        {
            switch (_limiter.TryAdmitAddress(address, out var retryAfter))
            {
                case AddressAdmission.RateLimited:
                    // Whole seconds (RFC 9110 §10.2.3), rounded up so a client that waits exactly that long gets a token.
                    await RefuseEarlyAsync(connection, 429, "too many connection attempts from this address",
                        (int)Math.Ceiling(retryAfter.TotalSeconds)).ConfigureAwait(false);
                    return;
                case AddressAdmission.TooManyConnections:
                    await RefuseEarlyAsync(connection, 429, "too many connections from this address", 0).ConfigureAwait(false);
                    return;
            }
        }

        try
        {
            var session = await AcceptAsync(connection).ConfigureAwait(false);
            if (session is null)
            {
                return;
            }

            _services.Metrics.ConnectionOpened();

            // The session runs inline rather than in a method of its own: one async state machine less per connection
            // for as long as it lives (the idle-memory benchmark's census shows its size).
            // No registration on Kestrel's ConnectionClosedRequested (fired for every connection when the server stops):
            // it would hold a callback list and node per connection. DrainCoordinator tracks every session and
            // closes with 1001 whatever the drain leaves open, also a session that registers after the drain's last closes.
            try
            {
                session.Start();

                // After Start: the Hello frame is queued first, so a Drain frame (sent at once when the drain is under way)
                // never precedes it.
                using var drain = _drain.Register(session.Connection);
                // No registration on connection.ConnectionClosed either (see AcceptAsync): Kestrel's socket transport
                // completes the input pipe when the socket ends or is aborted, before it fires ConnectionClosed, and that
                // ends the receive loop, which ends the connection.
                await session.Connection.RunAsync(session, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                _services.Logger.LogError(e, "Session {Session} failed", connection.ConnectionId);
            }
            finally
            {
                session.Dispose();
                _services.Metrics.ConnectionClosed();

                // The user's slot, taken during the handshake (see AcceptAsync).
                _limiter.ReleaseUser(session.TenantId, session.UserId);
            }
        }
        finally
        {
            if (address is not null)
            {
                _limiter.ReleaseAddress(address);
            }
        }
    }

    /// <summary>
    /// The upgrade handshake, and the session of an accepted one; null when the handshake was refused or the peer left.
    /// The user's connection slot is taken inside the decide callback (after authentication, so the 429 is the
    /// handshake's answer): a session is returned exactly when that slot is held, and a handshake that fails after taking
    /// it (the 101 cannot be written) gives it back here.
    /// </summary>
    /// <remarks>A method of its own so that what only the handshake needs lives only as long as the handshake: the decide
    /// callback's closure (32 B) and the handshake result (the awaiter of a 40-byte struct) would otherwise be fields of
    /// <see cref="OnConnectedAsync"/>'s state machine for the connection's whole life.</remarks>
    private async ValueTask<Session?> AcceptAsync(ConnectionContext connection)
    {
        Principal? userSlot = null;
        Session? session = null;
        try
        {
            HandshakeResult handshake;
            try
            {
                // Not connection.ConnectionClosed: the first registration on Kestrel's per-connection token source
                // creates its callback list and leaves a pooled callback node in it for the connection's whole life.
                // A peer that leaves ends the read (the pipe completes) and the handshake timeout bounds the rest.
                handshake = await WebSocketHandshake.AcceptAsync(connection.Transport, _wsOptions, DecideAndAdmit, CancellationToken.None)
                    .ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or ConnectionResetException)
            {
                return null;
            }

            if (!handshake.Accepted)
            {
                _services.Metrics.HandshakeRejects.Add(1, new KeyValuePair<string, object?>("status", handshake.StatusCode));
                return null;
            }

            var admission = (Admission)handshake.State!;
            session = new Session(new WebSocketConnection(connection.Transport, _wsOptions), admission.Principal, connection.ConnectionId,
                _services, admission.User);
            return session;
        }
        finally
        {
            if (session is null && userSlot is not null)
            {
                _limiter.ReleaseUser(userSlot.TenantId, userSlot.UserId);
            }
        }

        async ValueTask<HandshakeDecision> DecideAndAdmit(HandshakeRequest request)
        {
            var decision = await DecideAsync(request).ConfigureAwait(false);
            if (!decision.IsAccepted)
            {
                return decision;
            }

            var principal = (Principal)decision.State!;
            if (!_limiter.TryAdmitUser(principal.TenantId, principal.UserId, out var user))
            {
                return HandshakeDecision.Reject(429, "too many connections for this user");
            }

            userSlot = principal;
            return HandshakeDecision.Accept(decision.SubProtocol, new Admission(principal, user));
        }
    }

    /// <summary>The state of an accepted handshake: who, and the user's slot (entry) in the connection limiter.</summary>
    private sealed record Admission(Principal Principal, ConnectionLimiter.User User);

    private Task RefuseEarlyAsync(ConnectionContext connection, int status, string reason, int retryAfterSeconds)
    {
        _services.Metrics.HandshakeRejects.Add(1, new KeyValuePair<string, object?>("status", status));
        return RefuseCoreAsync();

        async Task RefuseCoreAsync()
        {
            try
            {
                await EarlyRefusal.RefuseAsync(connection.Transport, status, reason, retryAfterSeconds, _wsOptions.MaxHandshakeBytes,
                    connection.ConnectionClosed).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or ConnectionResetException)
            {
                // the client left first
            }
        }
    }

    private async ValueTask<HandshakeDecision> DecideAsync(HandshakeRequest request)
    {
        if (_drain.IsDraining)
        {
            // The drain began while this request was arriving.
            return HandshakeDecision.Reject(503, DrainCoordinator.Reason);
        }

        if (!string.Equals(request.Path, _services.Options.Path, StringComparison.Ordinal))
        {
            return HandshakeDecision.Reject(404, "not found");
        }

        if (!request.SubProtocols.Contains(ProtocolConstants.SubProtocol, StringComparer.Ordinal))
        {
            return HandshakeDecision.Reject(400, $"subprotocol {ProtocolConstants.SubProtocol} required");
        }

        // Browsers always send Origin on a WebSocket upgrade; native apps send none and are not subject to the list.
        if (_allowedOrigins.Count > 0 && request.Origin is { } origin && !_allowedOrigins.Contains(origin))
        {
            return HandshakeDecision.Reject(403, "origin not allowed");
        }

        // Completes synchronously unless the token names a signing key we have not fetched yet.
        var (principal, failure) = await _auth.ValidateAsync(FindToken(request)).ConfigureAwait(false);
        return principal is null
            ? HandshakeDecision.Reject(401, failure ?? "unauthorized")
            : HandshakeDecision.Accept(ProtocolConstants.SubProtocol, principal);
    }

    /// <summary>The token from (in order) the Authorization header, an <c>access_token.</c> subprotocol entry
    /// (browsers cannot set headers), or the <c>access_token</c> query parameter.</summary>
    internal static string? FindToken(HandshakeRequest request)
    {
        if (request.Authorization is { } auth && auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return auth["Bearer ".Length..].Trim();
        }

        foreach (var p in request.SubProtocols)
        {
            if (p.StartsWith(ProtocolConstants.TokenSubProtocolPrefix, StringComparison.Ordinal))
            {
                return p[ProtocolConstants.TokenSubProtocolPrefix.Length..];
            }
        }

        if (request.Query is { Length: > 0 } query)
        {
            foreach (var part in query.TrimStart('?').Split('&'))
            {
                if (part.StartsWith("access_token=", StringComparison.Ordinal))
                {
                    return Uri.UnescapeDataString(part["access_token=".Length..]);
                }
            }
        }

        return null;
    }
}
