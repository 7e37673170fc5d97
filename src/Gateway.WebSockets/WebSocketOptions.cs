namespace Gateway.WebSockets;

/// <summary>Limits and timers of one server-side WebSocket connection. Read once per connection; do not mutate while in use.</summary>
public sealed class WebSocketOptions
{
    /// <summary>
    /// Largest message, all fragments together (default 65536). A frame whose header announces more is refused with
    /// close 1009 before its payload is buffered. A single-frame message is parsed straight from the transport's buffer,
    /// so this must stay below the transport's read buffer limit (Kestrel sockets: 1 MiB by default).
    /// </summary>
    public int MaxMessageBytes { get; set; } = 64 * 1024;

    /// <summary>Largest upgrade request, request line plus headers (default 8192). Over it the handshake answers HTTP 431.</summary>
    public int MaxHandshakeBytes { get; set; } = 8 * 1024;

    /// <summary>How long the whole upgrade request may take to arrive (default 10 s); after that the connection is dropped without an answer.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Bound on a close (default 5 s): from the moment a close starts, draining the send queue, sending the close frame
    /// and waiting for the peer's close frame must all finish within it, else the connection is aborted.
    /// </summary>
    public TimeSpan CloseTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The server sends a ping when nothing was sent or received for this long (default 30 s). <see cref="TimeSpan.Zero"/> disables it.</summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A connection from which nothing (no frame, no pong) arrived for this long is closed with 1001 (default 90 s,
    /// three keep-alive intervals: a live client answers every ping). Checked at keep-alive ticks, so it takes
    /// effect within one <see cref="KeepAliveInterval"/> after it expires; <see cref="TimeSpan.Zero"/>, or a zero
    /// keep-alive interval, disables it.
    /// </summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(90);

    /// <summary>
    /// The wheel that runs the keep-alive and idle checks (default <see cref="TimerWheel.Shared"/>, 100 ms resolution):
    /// one shared timer for every connection instead of a <see cref="Timer"/> each. Hosts may also schedule their own
    /// per-connection deadlines on it (<see cref="WebSocketConnection.Timers"/>).
    /// </summary>
    public TimerWheel Timers { get; set; } = TimerWheel.Shared;

    /// <summary>Most frames waiting in the send queue (default 1024); <see cref="WebSocketConnection.TryEnqueue"/> refuses beyond it.</summary>
    public int MaxOutboundFrames { get; set; } = 1024;

    /// <summary>Most bytes waiting in the send queue (default 1 MiB); <see cref="WebSocketConnection.TryEnqueue"/> refuses beyond it.</summary>
    public long MaxOutboundBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// Called by the writer pump for every frame with an <see cref="OutboundFrame.Timestamp"/> when it hands the frame's
    /// bytes to the transport, with that timestamp and the pass's current <see cref="System.Diagnostics.Stopwatch.GetTimestamp"/>
    /// (one clock read per pass). Runs on the pump under the connection's queue lock: keep it to a few nanoseconds (e.g.
    /// recording a histogram). Null: nothing is called.
    /// </summary>
    public Action<long, long>? TimestampedFrameWritten { get; set; }
}
