using Gateway.Protocol;
using Gateway.WebSockets;

namespace Gateway.Server.Sessions;

/// <summary>Refusal of requests over the user's rates (shared by the user's connections on this gateway).</summary>
internal sealed partial class Session
{
    /// <summary>Takes a token from a per-user bucket, or answers RateLimited with the wait.</summary>
    private bool TryTakeOrRefuse(RateKind rate, uint requestId, string kind)
    {
        if (_services.Limits.TryTake(_user, rate, out var retryAfter))
        {
            return true;
        }

        _services.Metrics.RateLimited.Add(1, new KeyValuePair<string, object?>("kind", kind));
        var ms = (uint)Math.Clamp(Math.Ceiling(retryAfter.TotalMilliseconds), 1, uint.MaxValue);
        var frame = OutboundFrame.Rent(96);
        ServerFrameWriter.WriteError(frame, requestId, ErrorCode.RateLimited, $"too many {kind} requests", ms);
        Enqueue(frame);
        return false;
    }
}
