namespace Gateway.WebSockets;

/// <summary>The application's answer to an upgrade request: accept (with a subprotocol) or reject with an HTTP status.</summary>
public readonly struct HandshakeDecision : IEquatable<HandshakeDecision>
{
    private HandshakeDecision(bool accepted, string? subProtocol, object? state, int statusCode, string? reason)
    {
        IsAccepted = accepted;
        SubProtocol = subProtocol;
        State = state;
        StatusCode = statusCode;
        Reason = reason;
    }

    /// <summary>Whether the upgrade is accepted.</summary>
    public bool IsAccepted { get; }

    /// <summary>The subprotocol to confirm; must be one the client offered, or null for none.</summary>
    public string? SubProtocol { get; }

    /// <summary>Anything the host wants back in <see cref="HandshakeResult.State"/> (e.g. the authenticated principal).</summary>
    public object? State { get; }

    /// <summary>The HTTP status of a rejection (400-599); 101 when accepted. <c>default(HandshakeDecision)</c> counts as a 500 rejection.</summary>
    public int StatusCode { get; }

    /// <summary>The text body of a rejection.</summary>
    public string? Reason { get; }

    /// <summary>Accepts the upgrade.</summary>
    /// <param name="subProtocol">The subprotocol to confirm (one the client offered), or null.</param>
    /// <param name="state">Carried to <see cref="HandshakeResult.State"/>.</param>
    public static HandshakeDecision Accept(string? subProtocol, object? state = null) =>
        new(true, subProtocol, state, 101, null);

    /// <summary>Rejects the upgrade with an HTTP error and a short text body.</summary>
    /// <param name="statusCode">An HTTP status in 400-599 (e.g. 401, 403, 404).</param>
    /// <param name="reason">The text body of the response: say why.</param>
    public static HandshakeDecision Reject(int statusCode, string reason)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(statusCode, 400);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(statusCode, 599);
        return new(false, null, null, statusCode, reason ?? string.Empty);
    }

    /// <inheritdoc />
    public bool Equals(HandshakeDecision other) =>
        IsAccepted == other.IsAccepted && StatusCode == other.StatusCode &&
        string.Equals(SubProtocol, other.SubProtocol, StringComparison.Ordinal) &&
        string.Equals(Reason, other.Reason, StringComparison.Ordinal) && Equals(State, other.State);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is HandshakeDecision other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(IsAccepted, StatusCode, SubProtocol, Reason);

    /// <summary>Value equality.</summary>
    public static bool operator ==(HandshakeDecision left, HandshakeDecision right) => left.Equals(right);

    /// <summary>Value inequality.</summary>
    public static bool operator !=(HandshakeDecision left, HandshakeDecision right) => !left.Equals(right);
}
