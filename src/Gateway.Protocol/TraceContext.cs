using System.Buffers;
using System.Diagnostics;

namespace Gateway.Protocol;

/// <summary>
/// W3C Trace Context (<c>traceparent</c>, <c>tracestate</c>) as carried by a Send frame, an HTTP send and the NATS
/// headers between the distributed roles. See <c>proto/PROTOCOL.md</c> (Send) and <c>proto/NATS.md</c>.
/// </summary>
/// <remarks>
/// Hand-rolled rather than <see cref="DistributedContextPropagator"/>: the rules must be exactly the documented ones
/// (lowercase hex, ids not all zero, version <c>ff</c> refused, a later version read by its first 55 characters),
/// they must apply to the UTF-8 bytes of a frame without allocating for a value that is refused, and the format on
/// the wire between our own roles must not depend on a process-wide setting a host may change (the propagator in
/// use, which also writes baggage — and the log keeps what it is given for as long as the stream keeps events).
/// </remarks>
public static class TraceContext
{
    /// <summary>The header (and field) name of the trace parent.</summary>
    public const string TraceParentHeader = "traceparent";

    /// <summary>The header (and field) name of the vendor trace state.</summary>
    public const string TraceStateHeader = "tracestate";

    /// <summary>Length of a version-00 traceparent: <c>00-</c> + 32 + <c>-</c> + 16 + <c>-</c> + 2.</summary>
    public const int TraceParentLength = 55;

    /// <summary>Longest traceparent the server looks at (a later version may append fields); longer ones are ignored.</summary>
    public const int MaxTraceParentLength = 256;

    /// <summary>Longest tracestate kept (the W3C limit a vendor must propagate); a longer one is dropped.</summary>
    public const int MaxTraceStateLength = 512;

    /// <summary>Parses a traceparent; false (and default) when it is not a valid W3C traceparent.</summary>
    public static bool TryParse(ReadOnlySpan<char> traceParent, out ActivityContext context) =>
        TryParse(traceParent, default, out context);

    /// <summary>Parses a traceparent with its tracestate (kept only when it is valid, see <see cref="IsValidTraceState"/>).</summary>
    public static bool TryParse(ReadOnlySpan<char> traceParent, string? traceState, out ActivityContext context)
    {
        context = default;
        if (!IsValidTraceParent(traceParent))
        {
            return false;
        }

        var traceId = ActivityTraceId.CreateFromString(traceParent.Slice(3, 32));
        var spanId = ActivitySpanId.CreateFromString(traceParent.Slice(36, 16));
        var flags = (HexValue(traceParent[54]) & 1) != 0 ? ActivityTraceFlags.Recorded : ActivityTraceFlags.None;
        context = new ActivityContext(traceId, spanId, flags, IsValidTraceState(traceState) ? traceState : null, isRemote: true);
        return true;
    }

    /// <summary>True when <paramref name="traceParent"/> is a W3C traceparent this server accepts.</summary>
    /// <remarks>
    /// <c>version-traceid-parentid-flags</c>: two lowercase hex digits of version (not <c>ff</c>), 32 of trace id, 16 of
    /// parent id, 2 of flags, joined by <c>-</c>; the ids not all zeros. Version <c>00</c> is exactly 55 characters; a
    /// later version may be longer, with a <c>-</c> after the flags (what follows is not read), as the W3C
    /// recommendation asks of a version-00 reader.
    /// </remarks>
    public static bool IsValidTraceParent(ReadOnlySpan<char> traceParent)
    {
        if (traceParent.Length < TraceParentLength || traceParent.Length > MaxTraceParentLength)
        {
            return false;
        }

        if (!IsLowerHex(traceParent[0]) || !IsLowerHex(traceParent[1]) || (traceParent[0] == 'f' && traceParent[1] == 'f'))
        {
            return false;
        }

        var version00 = traceParent[0] == '0' && traceParent[1] == '0';
        if (version00 ? traceParent.Length != TraceParentLength : traceParent.Length > TraceParentLength && traceParent[TraceParentLength] != '-')
        {
            return false;
        }

        if (traceParent[2] != '-' || traceParent[35] != '-' || traceParent[52] != '-')
        {
            return false;
        }

        return IsLowerHexNotAllZeros(traceParent.Slice(3, 32)) && IsLowerHexNotAllZeros(traceParent.Slice(36, 16))
            && IsLowerHex(traceParent[53]) && IsLowerHex(traceParent[54]);
    }

    /// <summary>True when <paramref name="traceState"/> may be propagated: 1..512 characters of printable ASCII.</summary>
    /// <remarks>The members' syntax is the vendors' business; this bounds what the server carries and stores.</remarks>
    public static bool IsValidTraceState(ReadOnlySpan<char> traceState)
    {
        if (traceState.IsEmpty || traceState.Length > MaxTraceStateLength)
        {
            return false;
        }

        foreach (var c in traceState)
        {
            if (c is < (char)0x20 or > (char)0x7e)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Reads a traceparent (and tracestate) from the UTF-8 fields of a frame. Returns the validated strings, or false
    /// without allocating when the traceparent is missing or invalid; an invalid tracestate is dropped (null).
    /// </summary>
    public static bool TryRead(in ReadOnlySequence<byte> traceParentUtf8, in ReadOnlySequence<byte> traceStateUtf8,
        out string? traceParent, out string? traceState)
    {
        traceParent = null;
        traceState = null;
        if (traceParentUtf8.Length is < TraceParentLength or > MaxTraceParentLength)
        {
            return false;
        }

        Span<char> chars = stackalloc char[MaxTraceParentLength];
        var n = ToAscii(traceParentUtf8, chars);
        if (n < 0 || !IsValidTraceParent(chars[..n]))
        {
            return false;
        }

        traceParent = new string(chars[..n]);
        if (traceStateUtf8.Length is > 0 and <= MaxTraceStateLength)
        {
            Span<char> state = stackalloc char[MaxTraceStateLength];
            var m = ToAscii(traceStateUtf8, state);
            if (m > 0 && IsValidTraceState(state[..m]))
            {
                traceState = new string(state[..m]);
            }
        }

        return true;
    }

    /// <summary>Formats a context as a version-00 traceparent.</summary>
    public static string Format(in ActivityContext context) =>
        string.Create(TraceParentLength, context, static (span, c) =>
        {
            "00-".CopyTo(span);
            c.TraceId.ToHexString().CopyTo(span[3..]);
            span[35] = '-';
            c.SpanId.ToHexString().CopyTo(span[36..]);
            span[52] = '-';
            span[53] = '0';
            span[54] = (c.TraceFlags & ActivityTraceFlags.Recorded) != 0 ? '1' : '0';
        });

    /// <summary>The traceparent of an activity (version 00), whatever its id format.</summary>
    public static string Format(Activity activity)
    {
        ArgumentNullException.ThrowIfNull(activity);
        return Format(activity.Context);
    }

    // Copies ASCII bytes into chars; -1 when a byte is not ASCII (then the value cannot be valid anyway).
    private static int ToAscii(in ReadOnlySequence<byte> utf8, Span<char> chars)
    {
        var i = 0;
        foreach (var segment in utf8)
        {
            foreach (var b in segment.Span)
            {
                if (b > 0x7f || i >= chars.Length)
                {
                    return -1;
                }

                chars[i++] = (char)b;
            }
        }

        return i;
    }

    private static bool IsLowerHex(char c) => c is (>= '0' and <= '9') or (>= 'a' and <= 'f');

    private static int HexValue(char c) => c <= '9' ? c - '0' : c - 'a' + 10;

    private static bool IsLowerHexNotAllZeros(ReadOnlySpan<char> s)
    {
        var nonZero = false;
        foreach (var c in s)
        {
            if (!IsLowerHex(c))
            {
                return false;
            }

            nonZero |= c != '0';
        }

        return nonZero;
    }
}
