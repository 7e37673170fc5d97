using Gateway.Protocol;
using Gateway.Server.Auth;
using Gateway.WebSockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace Gateway.Server.Sessions;

/// <summary>
/// The Kestrel connection handler behind the WebSocket listener. The task returned by
/// <see cref="OnConnectedAsync"/> is the connection's lifetime: handshake, session, close.
/// </summary>
internal sealed class GatewayConnectionHandler : ConnectionHandler
{
    private readonly JwtAuthenticator _auth;
    private readonly SessionServices _services;
    private readonly Gateway.WebSockets.WebSocketOptions _wsOptions;
    private readonly HashSet<string> _allowedOrigins;
    private readonly Func<HandshakeRequest, HandshakeDecision> _decide;

    public GatewayConnectionHandler(JwtAuthenticator auth, SessionServices services)
    {
        _auth = auth;
        _services = services;
        var o = services.Options;
        _wsOptions = new Gateway.WebSockets.WebSocketOptions
        {
            MaxMessageBytes = o.MaxMessageBytes,
            HandshakeTimeout = TimeSpan.FromSeconds(o.HandshakeTimeoutSeconds),
            KeepAliveInterval = TimeSpan.FromSeconds(o.HeartbeatSeconds),
            IdleTimeout = TimeSpan.FromSeconds(o.IdleTimeoutSeconds),
            MaxOutboundFrames = o.MaxOutboundFrames,
            MaxOutboundBytes = o.MaxOutboundBytes,
        };
        _allowedOrigins = new HashSet<string>(o.AllowedOrigins, StringComparer.OrdinalIgnoreCase);
        _decide = Decide;
    }

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        HandshakeResult handshake;
        try
        {
            handshake = await WebSocketHandshake.AcceptAsync(connection.Transport, _wsOptions, _decide, connection.ConnectionClosed)
                .ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ConnectionResetException)
        {
            return;
        }

        if (!handshake.Accepted)
        {
            _services.Metrics.HandshakeRejects.Add(1, new KeyValuePair<string, object?>("status", handshake.StatusCode));
            return;
        }

        var principal = (Principal)handshake.State!;
        var socket = new WebSocketConnection(connection.Transport, _wsOptions);
        var session = new Session(socket, principal, connection.ConnectionId, _services);
        _services.Metrics.ConnectionOpened();

        // Kestrel asks every connection to close when the host stops; answer with 1001 so the client reconnects
        // (to another pod) and resumes from its cursors. Kestrel aborts whatever is still open after the host's
        // shutdown timeout.
        using var shutdown = connection.Features.Get<IConnectionLifetimeNotificationFeature>()?.ConnectionClosedRequested
            .Register(static s => ((WebSocketConnection)s!).Close(CloseCodes.GoingAway, "server shutting down"), socket);
        try
        {
            session.Start();
            await socket.RunAsync(session, connection.ConnectionClosed).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            _services.Logger.LogError(e, "Session {Session} failed", connection.ConnectionId);
        }
        finally
        {
            session.Dispose();
            _services.Metrics.ConnectionClosed();
        }
    }

    private HandshakeDecision Decide(HandshakeRequest request)
    {
        if (!string.Equals(request.Path, _services.Options.Path, StringComparison.Ordinal))
        {
            return HandshakeDecision.Reject(404, "not found");
        }

        if (!request.SubProtocols.Contains(ProtocolConstants.SubProtocol, StringComparer.Ordinal))
        {
            return HandshakeDecision.Reject(400, $"subprotocol {ProtocolConstants.SubProtocol} required");
        }

        if (_allowedOrigins.Count > 0 && request.Origin is { } origin && !_allowedOrigins.Contains(origin))
        {
            return HandshakeDecision.Reject(403, "origin not allowed");
        }

        var principal = _auth.Validate(FindToken(request), out var failure);
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
