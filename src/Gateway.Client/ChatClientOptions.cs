using System.Net.WebSockets;
using Gateway.Protocol;

namespace Gateway.Client;

/// <summary>Settings of a <see cref="ChatClient"/>. Read once by the constructor; later changes have no effect.</summary>
public sealed class ChatClientOptions
{
    /// <summary>The gateway's WebSocket endpoint. Default <c>ws://127.0.0.1:8080/v1/ws</c>.</summary>
    public Uri Endpoint { get; set; } = new("ws://127.0.0.1:8080" + ProtocolConstants.DefaultPath);

    /// <summary>
    /// Supplies the bearer token; called before every connect and reconnect, and when the server announces the
    /// token's expiry (TokenExpiring) to refresh it on the live connection, so it must return a token that is valid
    /// then, for the same user and tenant. Takes precedence over <see cref="Token"/>.
    /// </summary>
    public Func<CancellationToken, ValueTask<string>>? TokenProvider { get; set; }

    /// <summary>A fixed bearer token, used when <see cref="TokenProvider"/> is null. With a fixed token a
    /// <see cref="CloseCodes.TokenExpired"/> close, or an HTTP 401/403 on reconnect, ends the client for good.</summary>
    public string? Token { get; set; }

    /// <summary>Send the token as the <c>access_token</c> query parameter instead of an <c>Authorization</c> header.</summary>
    public bool TokenInQuery { get; set; }

    /// <summary>The WebSocket subprotocol offered; the server must select it. Default <see cref="ProtocolConstants.SubProtocol"/>.</summary>
    public string SubProtocol { get; set; } = ProtocolConstants.SubProtocol;

    /// <summary>How long a request waits for its answer (and for a connection) before it times out. Default 10 s.
    /// A send that times out is not failed: it is sent again with the same client message id.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long one connect attempt (TCP, TLS, upgrade and the Hello frame) may take. Default 10 s.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Reconnect by itself when the connection drops without the application asking. Default true.</summary>
    public bool AutoReconnect { get; set; } = true;

    /// <summary>First reconnect delay; it doubles per failed attempt up to <see cref="ReconnectDelayMax"/>. Default 100 ms.</summary>
    public TimeSpan ReconnectDelayMin { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Longest reconnect delay. Default 5 s.</summary>
    public TimeSpan ReconnectDelayMax { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Most events (messages, caught-up and revoked notices) buffered for the application. When the buffer is
    /// full the client stops reading the socket until the application reads, so memory stays bounded and the
    /// server's slow-consumer policy (close 4002) applies. Typing notices that find it full are dropped instead.
    /// Default 1024.
    /// </summary>
    public int EventBufferCapacity { get; set; } = 1024;

    /// <summary>
    /// Largest server message accepted (all fragments together). Default 8 MiB: a full history page is
    /// 200 messages x 32 KiB of content = 6.25 MiB plus per-message headers, so 8 MiB leaves room.
    /// </summary>
    public int MaxReceiveMessageBytes { get; set; } = 8 * 1024 * 1024;

    /// <summary>Interval of WebSocket keep-alive pings. Default 20 s.</summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>How long to wait for the pong to a keep-alive ping before the connection counts as dead and is
    /// replaced. Default 20 s; <see cref="Timeout.InfiniteTimeSpan"/> sends unsolicited pongs only and never times out.</summary>
    public TimeSpan KeepAliveTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Last-chance hook to adjust each new socket's options (proxy, certificates, extra headers).</summary>
    public Action<ClientWebSocketOptions>? ConfigureWebSocket { get; set; }

    /// <summary>Optional diagnostic log sink; called from background threads.</summary>
    public Action<string>? Log { get; set; }

    /// <summary>
    /// When true (the default), a send carries the W3C trace context of <see cref="System.Diagnostics.Activity.Current"/>
    /// at the time of the <see cref="ChatClient.SendAsync"/> call (Send's optional traceparent/tracestate elements,
    /// proto/PROTOCOL.md), so the server's spans join the caller's trace. Nothing is added when there is no current
    /// activity; servers that predate the field ignore it.
    /// </summary>
    public bool PropagateTraceContext { get; set; } = true;
}
