using Gateway.Server.Connections;

namespace Gateway.Server.Sessions;

/// <summary>The per-user rate limits, one token bucket each.</summary>
internal enum RateKind
{
    /// <summary>Send frames.</summary>
    Send,

    /// <summary>Subscribe frames.</summary>
    Subscribe,

    /// <summary>History frames.</summary>
    History,

    /// <summary>Typing frames.</summary>
    Typing,
}

/// <summary>
/// Per-user rate limits shared by all of a user's connections on this server: one token bucket per <see cref="RateKind"/>
/// and user, for as long as the user has a connection open.
/// </summary>
/// <remarks>
/// The policies (rate and burst of each kind) are the same for every user and live here once. A user's buckets are
/// only their states, four <see langword="long"/>s inline in the user's <see cref="ConnectionLimiter.User"/> entry, the
/// one that already counts the user's connections (see <see cref="RateLimit"/>): a user costs no object and no table
/// entry for its limits, where four <see cref="TokenBucket"/>s, a record holding them, an entry and a table node of
/// their own took 296 B.
/// </remarks>
internal sealed class UserLimits
{
    private readonly RateLimit[] _policies;
    private readonly TimeProvider _time;

    public UserLimits(GatewayOptions options, TimeProvider time)
    {
        // Indexed by RateKind.
        _policies =
        [
            new RateLimit(options.SendsPerSecond, options.SendBurst),
            new RateLimit(options.SubscribesPerSecond, options.SubscribeBurst),
            new RateLimit(options.HistoryPerSecond, options.HistoryBurst),
            new RateLimit(options.TypingPerSecond, options.TypingBurst),
        ];
        System.Diagnostics.Debug.Assert(_policies.Length == ConnectionLimiter.User.RateKinds, "one state per kind");
        _time = time;
    }

    /// <summary>Takes a token of <paramref name="kind"/> from <paramref name="user"/>'s bucket, now.</summary>
    /// <param name="user">The user's entry (<see cref="ConnectionLimiter.TryAdmitUser"/>).</param>
    /// <param name="kind">Which bucket.</param>
    /// <param name="retryAfter">When refused: how long until a token is available; else zero.</param>
    public bool TryTake(ConnectionLimiter.User user, RateKind kind, out TimeSpan retryAfter) =>
        _policies[(int)kind].TryTake(ref user.RateState((int)kind), TokenBucket.GetTicks(_time), out retryAfter);
}
