namespace Gateway.WebSockets;

/// <summary>The outcome of <c>WebSocketHandshake.AcceptAsync</c>.</summary>
public readonly struct HandshakeResult : IEquatable<HandshakeResult>
{
    internal HandshakeResult(bool accepted, HandshakeRequest? request, int statusCode, object? state, string? subProtocol)
    {
        Accepted = accepted;
        Request = request;
        StatusCode = statusCode;
        State = state;
        SubProtocol = subProtocol;
    }

    /// <summary>True when "101 Switching Protocols" was sent: run a <see cref="WebSocketConnection"/> on the transport.</summary>
    public bool Accepted { get; }

    /// <summary>The parsed request; null when none could be parsed (timeout, end of stream, oversize, malformed).</summary>
    public HandshakeRequest? Request { get; }

    /// <summary>
    /// The status that was answered: 101 on success, the 4xx/5xx sent on a rejection, 408 when the request did not
    /// arrive within <see cref="WebSocketOptions.HandshakeTimeout"/> and 0 when the peer ended the stream before a full
    /// request (in those two cases nothing was written).
    /// </summary>
    public int StatusCode { get; }

    /// <summary>What the host passed to <see cref="HandshakeDecision.Accept"/>.</summary>
    public object? State { get; }

    /// <summary>The confirmed subprotocol, if any.</summary>
    public string? SubProtocol { get; }

    /// <inheritdoc />
    public bool Equals(HandshakeResult other) =>
        Accepted == other.Accepted && StatusCode == other.StatusCode && ReferenceEquals(Request, other.Request) &&
        Equals(State, other.State) && string.Equals(SubProtocol, other.SubProtocol, StringComparison.Ordinal);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is HandshakeResult other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Accepted, StatusCode, Request, SubProtocol);

    /// <summary>Value equality.</summary>
    public static bool operator ==(HandshakeResult left, HandshakeResult right) => left.Equals(right);

    /// <summary>Value inequality.</summary>
    public static bool operator !=(HandshakeResult left, HandshakeResult right) => !left.Equals(right);
}
