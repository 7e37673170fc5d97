using Gateway.Tools.Common;

namespace Gateway.LoadGen.Targets;

/// <summary>A system under test: makes connections and does the setup its scenarios need.</summary>
public interface ILoadTarget
{
    /// <summary>Short name used in reports and on the command line (<c>gateway</c>, <c>signalr</c>, …).</summary>
    string Name { get; }

    /// <summary>
    /// True when delivered messages carry a dense per-room server seq and connections implement
    /// <see cref="IResumableLoadConnection"/>; otherwise order is checked by the per-publisher counter in the payload.
    /// </summary>
    bool HasServerSeq { get; }

    /// <summary>A new, unconnected connection.</summary>
    ILoadConnection Create();

    /// <summary>Creates a room with these members before anyone subscribes (a no-op where rooms need no setup).</summary>
    Task CreateRoomAsync(string room, IReadOnlyList<string> members, CancellationToken ct);

    /// <summary>A credential for <paramref name="userId"/>, or null where the target has no auth.</summary>
    string? TokenFor(string userId);
}
