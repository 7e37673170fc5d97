using Gateway.Protocol;
using NATS.Client.Core;

namespace Gateway.Nats;

/// <summary>
/// The W3C trace context in NATS headers (<c>traceparent</c>, <c>tracestate</c>; proto/NATS.md): on the send request
/// gateway → writer and on every traced log append, from where JetStream's republish carries it to the gateways.
/// </summary>
internal static class NatsTrace
{
    /// <summary>Adds the context to <paramref name="headers"/> (created when null); unchanged when there is none.</summary>
    public static NatsHeaders? With(NatsHeaders? headers, string? traceParent, string? traceState)
    {
        if (traceParent is null)
        {
            return headers;
        }

        headers ??= [];
        headers[TraceContext.TraceParentHeader] = traceParent;
        if (traceState is not null)
        {
            headers[TraceContext.TraceStateHeader] = traceState;
        }

        return headers;
    }

    /// <summary>The headers' traceparent when it is a valid W3C one, with their tracestate when that is valid too.</summary>
    public static (string? TraceParent, string? TraceState) Read(NatsHeaders? headers)
    {
        if (headers is null || !headers.TryGetValue(TraceContext.TraceParentHeader, out var values) || values.Count != 1 ||
            values[0] is not { } traceParent || !TraceContext.IsValidTraceParent(traceParent))
        {
            return (null, null);
        }

        var traceState = headers.TryGetValue(TraceContext.TraceStateHeader, out var states) && states.Count == 1 && TraceContext.IsValidTraceState(states[0])
            ? states[0]
            : null;
        return (traceParent, traceState);
    }
}
