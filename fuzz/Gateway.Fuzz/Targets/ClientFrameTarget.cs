using System.Buffers;
using Gateway.Protocol;

namespace Gateway.Fuzz;

/// <summary>
/// Target <c>client-frame</c>: <see cref="ClientFrameReader.TryRead"/> on the input as one WebSocket message payload,
/// and <see cref="SubscribeItemReader"/> over every Subscribe/Unsubscribe it accepts.
/// </summary>
/// <remarks>
/// Contract: TryRead never throws and answers a defined <see cref="ReadStatus"/>; Ok only for tags 1-4, UnknownType
/// never for them; every slice of an Ok frame lies inside the payload, in field order; an accepted Subscribe or
/// Unsubscribe enumerates exactly <see cref="ClientFrame.ItemCount"/> entries without throwing (the server trusts
/// that validation); and every segmentation of the payload gives the same status, type, request id and field bytes.
/// </remarks>
public static class ClientFrameTarget
{
    public const string Name = "client-frame";

    public static void Run(ReadOnlySpan<byte> data)
    {
        var whole = new ReadOnlySequence<byte>(data.ToArray());
        var status = Read(whole, out var frame, out var summary);

        var (c1, c2) = Segments.CutsFor(data);
        Same(status, summary, Segments.Split(data, c1), $"split at {c1}");
        Same(status, summary, Segments.Split(data, c1, c2), $"split at {c1},{c2}");
        Same(status, summary, Segments.Bytewise(data, Math.Min(data.Length, 64)), "byte by byte");

        if (status == ReadStatus.Ok)
        {
            CheckSlices(whole, frame);
        }
    }

    private static void Same(ReadStatus status, string summary, in ReadOnlySequence<byte> payload, string how)
    {
        var s = Read(payload, out _, out var other);
        ContractViolationException.Check(s == status, $"{how}: {s}, one segment gave {status}");
        ContractViolationException.Check(other == summary, $"{how}: frame {other}, one segment gave {summary}");
    }

    /// <summary>Reads and checks one frame; the summary is a canonical text of everything it carries, for comparison.</summary>
    private static ReadStatus Read(in ReadOnlySequence<byte> payload, out ClientFrame frame, out string summary)
    {
        var status = ClientFrameReader.TryRead(payload, out frame);
        ContractViolationException.Check(Enum.IsDefined(status), $"undefined status {(int)status}");
        bool known = frame.Type is FrameType.Subscribe or FrameType.Unsubscribe or FrameType.Send or FrameType.History
            or FrameType.Typing or FrameType.RefreshToken;
        ContractViolationException.Check(status != ReadStatus.Ok || known, $"Ok for type {frame.Type}");
        ContractViolationException.Check(status != ReadStatus.UnknownType || !known, $"UnknownType for known type {frame.Type}");

        summary = $"{status} {frame.Type} {frame.RequestId}";
        if (status != ReadStatus.Ok)
        {
            return status;
        }

        summary += frame.Type switch
        {
            FrameType.Send => $" {Hex(frame.ChatId)} {Hex(frame.ClientMessageId)} {Hex(frame.ContentType)} {Hex(frame.Content)} {frame.ExpiresAt} {Trace(frame)}",
            FrameType.History => $" {Hex(frame.ChatId)} {frame.BeforeSeq} {frame.Limit}",
            FrameType.Typing => $" {Hex(frame.ChatId)}",
            FrameType.RefreshToken => $" {Hex(frame.Token)}",
            _ => " " + Entries(frame),
        };
        return status;
    }

    /// <summary>The trace context fields and what the server's validation makes of them: it never throws, and what it
    /// accepts is a valid traceparent (with a valid tracestate or none).</summary>
    private static string Trace(in ClientFrame frame)
    {
        bool accepted;
        string? traceParent, traceState;
        try
        {
            accepted = TraceContext.TryRead(frame.TraceParent, frame.TraceState, out traceParent, out traceState);
        }
        catch (Exception e)
        {
            throw new ContractViolationException("TraceContext.TryRead threw on an accepted Send frame", e);
        }

        ContractViolationException.Check(accepted == traceParent is not null, "TryRead's answer and its traceparent disagree");
        ContractViolationException.Check(traceParent is null || TraceContext.IsValidTraceParent(traceParent), $"accepted invalid traceparent {traceParent}");
        ContractViolationException.Check(traceState is null || (accepted && TraceContext.IsValidTraceState(traceState)), $"accepted invalid tracestate {traceState}");
        return $"{Hex(frame.TraceParent)} {Hex(frame.TraceState)} {traceParent} {traceState}";
    }

    private static string Entries(in ClientFrame frame)
    {
        ContractViolationException.Check(frame.ItemCount >= 0, $"ItemCount {frame.ItemCount}");
        var items = new SubscribeItemReader(frame);
        var text = new System.Text.StringBuilder();
        int n = 0;
        try
        {
            while (items.TryNext(out var chatId, out var afterSeq))
            {
                n++;
                ContractViolationException.Check(n <= frame.ItemCount, "more entries than ItemCount");
                ContractViolationException.Check(frame.Type == FrameType.Subscribe || afterSeq == 0, "Unsubscribe entry with a cursor");
                text.Append(Hex(chatId)).Append(':').Append(afterSeq).Append(',');
            }
        }
        catch (Exception e) when (e is not ContractViolationException)
        {
            throw new ContractViolationException($"SubscribeItemReader threw on an accepted {frame.Type} frame", e);
        }

        ContractViolationException.Check(n == frame.ItemCount, $"{n} entries enumerated, ItemCount {frame.ItemCount}");
        return text.ToString();
    }

    /// <summary>Every field slice of an accepted frame lies inside the payload, and the fields come in wire order.</summary>
    private static void CheckSlices(ReadOnlySequence<byte> payload, in ClientFrame frame)
    {
        long previousEnd = 0;
        void InPayload(in ReadOnlySequence<byte> field, string name)
        {
            if (field.IsEmpty && field.Start.GetObject() is null)
            {
                return; // default(ReadOnlySequence): an empty string/bin may come back without a position
            }

            long start = payload.GetOffset(field.Start);
            long end = payload.GetOffset(field.End);
            ContractViolationException.Check(start >= previousEnd && start <= end && end <= payload.Length,
                $"{name} slice [{start}, {end}) is outside the payload or out of order");
            previousEnd = end;
        }

        switch (frame.Type)
        {
            case FrameType.Send:
                InPayload(frame.ChatId, "chatId");
                InPayload(frame.ClientMessageId, "clientMessageId");
                InPayload(frame.ContentType, "contentType");
                InPayload(frame.Content, "content");
                InPayload(frame.TraceParent, "traceparent");
                InPayload(frame.TraceState, "tracestate");
                break;
            case FrameType.History:
            case FrameType.Typing:
                InPayload(frame.ChatId, "chatId");
                break;
            case FrameType.RefreshToken:
                InPayload(frame.Token, "token");
                break;
            default:
                InPayload(frame.Items, "items");
                break;
        }
    }

    private static string Hex(in ReadOnlySequence<byte> bytes) => Convert.ToHexString(bytes.ToArray());
}
