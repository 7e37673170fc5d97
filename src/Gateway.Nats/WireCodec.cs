using System.Buffers;
using Gateway.Domain;
using Gateway.Protocol;
using MessagePack;

namespace Gateway.Nats;

/// <summary>The kinds of event on a chat's log subject.</summary>
public enum LogEventKind
{
    /// <summary>A message was committed.</summary>
    MessageCreated = 1,

    /// <summary>Users were added (also on chat creation).</summary>
    MembersAdded = 2,

    /// <summary>A user was removed.</summary>
    MemberRemoved = 3,
}

/// <summary>One decoded log event.</summary>
/// <param name="Kind">Which event.</param>
/// <param name="EventId">Unique id.</param>
/// <param name="OccurredAt">Unix milliseconds.</param>
/// <param name="TraceId">Correlation id, if any.</param>
/// <param name="TenantId">Tenant.</param>
/// <param name="ChatId">Chat.</param>
/// <param name="Message">The message, for <see cref="LogEventKind.MessageCreated"/>.</param>
/// <param name="Users">The users added or removed.</param>
/// <param name="EventNo">Dense per-chat event number (1, 2, …) over all kinds of event: the writer that loses a CAS race
/// compares it with the chat's message head to learn whether only messages were appended meanwhile.</param>
/// <param name="Head">The chat's message head after this event.</param>
/// <param name="AppendedAtUs">Unix microseconds (the writer's wall clock) at which the event was encoded for its append,
/// stamped by <see cref="WireCodec.EncodeEvent"/>; 0 when the event predates the field. Gateways measure delivery lag
/// from it.</param>
public sealed record LogEvent(
    LogEventKind Kind, string EventId, long OccurredAt, string? TraceId, string TenantId, string ChatId, ChatMessage? Message, IReadOnlyList<string> Users,
    ulong EventNo = 0, ulong Head = 0, long AppendedAtUs = 0)
{
    /// <summary>
    /// <see cref="AppendedAtUs"/> as a <see cref="System.Diagnostics.Stopwatch.GetTimestamp"/> value of this process (0 when
    /// unknown): the writer's wall clock against ours, so it is as good as the two clocks agree (NTP), and it includes the
    /// append's own round trip (the commit completes inside it), so the delivery lag measured from it is an upper bound by
    /// at most one append. A time in our future (clock skew) counts as now.
    /// </summary>
    public long CommittedAtTimestamp()
    {
        if (AppendedAtUs <= 0)
        {
            return 0;
        }

        var ageUs = Math.Max(0, (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / 10 - AppendedAtUs);
        return System.Diagnostics.Stopwatch.GetTimestamp() - (long)(ageUs * (System.Diagnostics.Stopwatch.Frequency / 1_000_000.0));
    }

    /// <summary>The canonical envelopes this event stands for (a MembersAdded of n users is n MemberAdded events).</summary>
    public IEnumerable<EventEnvelope> ToEnvelopes()
    {
        switch (Kind)
        {
            case LogEventKind.MessageCreated:
                yield return new EventEnvelope(EventId, EventTypes.MessageCreated, OccurredAt, EventTypes.SchemaVersion, TraceId, TenantId, ChatId, new MessageCreated(Message!))
                {
                    CommittedAt = CommittedAtTimestamp(),
                };
                break;
            case LogEventKind.MembersAdded:
                foreach (var u in Users)
                {
                    yield return new EventEnvelope(EventId, EventTypes.MemberAdded, OccurredAt, EventTypes.SchemaVersion, TraceId, TenantId, ChatId, new MemberAdded(u));
                }

                break;
            case LogEventKind.MemberRemoved:
                foreach (var u in Users)
                {
                    yield return new EventEnvelope(EventId, EventTypes.MemberRemoved, OccurredAt, EventTypes.SchemaVersion, TraceId, TenantId, ChatId, new MemberRemoved(u));
                }

                break;
        }
    }
}

/// <summary>
/// MessagePack encodings of what travels over NATS between the distributed roles: log events (the payload of
/// <c>chat.*</c> subjects, kept by JetStream) and the gateway ↔ writer requests. Arrays, not maps, like the client
/// protocol; a decoder ignores trailing elements it does not know, so fields are only ever appended.
/// </summary>
public static class WireCodec
{
    /// <summary>Schema of log events; bumped on incompatible change.</summary>
    public const int LogSchema = 1;

    /// <summary>Encodes a log event.</summary>
    public static byte[] EncodeEvent(LogEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var buffer = new ArrayBufferWriter<byte>(256 + (e.Message?.Content.Length ?? 0));
        var w = new MessagePackWriter(buffer);
        w.WriteArrayHeader(11);
        w.Write(LogSchema);
        w.Write((int)e.Kind);
        w.Write(e.EventId);
        w.Write(e.OccurredAt);
        WriteNullable(ref w, e.TraceId);
        w.Write(e.TenantId);
        w.Write(e.ChatId);
        if (e.Kind == LogEventKind.MessageCreated)
        {
            WriteMessageBody(ref w, e.Message!);
        }
        else
        {
            WriteStrings(ref w, e.Users);
        }

        w.Write(e.EventNo);
        w.Write(e.Head);

        // Stamped here, right before the append is issued, unless the caller set it (a re-encode of a stored event).
        w.Write(e.AppendedAtUs > 0 ? e.AppendedAtUs : (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / 10);
        w.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Decodes a log event.</summary>
    /// <exception cref="MessagePackSerializationException">Malformed.</exception>
    public static LogEvent DecodeEvent(ReadOnlySequence<byte> bytes)
    {
        var r = new MessagePackReader(bytes);
        var n = r.ReadArrayHeader();
        var schema = r.ReadInt32();
        if (schema != LogSchema || n < 8)
        {
            throw new MessagePackSerializationException($"unsupported log event schema {schema}");
        }

        var kind = (LogEventKind)r.ReadInt32();
        var eventId = r.ReadString()!;
        var occurredAt = r.ReadInt64();
        var traceId = ReadNullableString(ref r);
        var tenant = r.ReadString()!;
        var chat = r.ReadString()!;
        LogEvent e = kind == LogEventKind.MessageCreated
            ? new LogEvent(kind, eventId, occurredAt, traceId, tenant, chat, ReadMessageBody(ref r, tenant, chat), [])
            : new LogEvent(kind, eventId, occurredAt, traceId, tenant, chat, null, ReadStrings(ref r));
        if (n >= 10)
        {
            e = e with { EventNo = r.ReadUInt64(), Head = r.ReadUInt64() };
        }

        if (n >= 11)
        {
            e = e with { AppendedAtUs = r.ReadInt64() };
        }

        for (var i = 11; i < n; i++)
        {
            r.Skip();
        }

        return e;
    }

    /// <summary>Writes a message's fields (not tenant and chat) as one array.</summary>
    public static void WriteMessageBody(ref MessagePackWriter w, ChatMessage m)
    {
        ArgumentNullException.ThrowIfNull(m);
        w.WriteArrayHeader(8);
        w.Write(m.Seq);
        w.Write(m.MessageId);
        w.Write(m.SenderId);
        w.Write(m.SentAt);
        w.Write(m.ContentType);
        w.Write(m.Content.Span);
        WriteNullable(ref w, m.ExpiresAt);
        w.Write(m.ClientMessageId);
    }

    /// <summary>Reads what <see cref="WriteMessageBody"/> wrote. The content is a slice of the reader's bytes, not a copy:
    /// the message owns it from here, so the caller reads bytes that nothing reuses (every caller decodes an array NATS
    /// allocated for one message: a live event, a log entry, a writer's reply).</summary>
    public static ChatMessage ReadMessageBody(ref MessagePackReader r, string tenantId, string chatId)
    {
        var n = r.ReadArrayHeader();
        var seq = r.ReadUInt64();
        var messageId = r.ReadString()!;
        var sender = r.ReadString()!;
        var sentAt = r.ReadInt64();
        var contentType = r.ReadString()!;
        // Only bytes split across segments have to be joined into one array; a NATS payload is one array.
        var content = r.ReadBytes() is { } c ? Contiguous(c) : ReadOnlyMemory<byte>.Empty;
        long? expiresAt = r.TryReadNil() ? null : r.ReadInt64();
        var clientMessageId = r.ReadString()!;
        for (var i = 8; i < n; i++)
        {
            r.Skip();
        }

        return new ChatMessage(tenantId, chatId, seq, messageId, sender, sentAt, contentType, content, expiresAt, clientMessageId);
    }

    /// <summary>Writes a string array.</summary>
    public static void WriteStrings(ref MessagePackWriter w, IReadOnlyCollection<string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        w.WriteArrayHeader(values.Count);
        foreach (var v in values)
        {
            w.Write(v);
        }
    }

    /// <summary>Reads a string array.</summary>
    public static string[] ReadStrings(ref MessagePackReader r)
    {
        var n = r.ReadArrayHeader();
        var values = new string[n];
        for (var i = 0; i < n; i++)
        {
            values[i] = r.ReadString()!;
        }

        return values;
    }

    /// <summary>Writes a number or nil.</summary>
    public static void WriteNullable(ref MessagePackWriter w, long? value)
    {
        if (value is { } v)
        {
            w.Write(v);
        }
        else
        {
            w.WriteNil();
        }
    }

    /// <summary>Bytes read from a NATS payload, as memory the decoded value may keep: a slice when they lie in one
    /// segment (every payload NATS hands over is one array allocated for that message), a copy only when they straddle
    /// segments.</summary>
    public static ReadOnlyMemory<byte> Contiguous(ReadOnlySequence<byte> bytes) => bytes.IsSingleSegment ? bytes.First : bytes.ToArray();

    /// <summary>Writes a string or nil.</summary>
    public static void WriteNullable(ref MessagePackWriter w, string? value)
    {
        if (value is null)
        {
            w.WriteNil();
        }
        else
        {
            w.Write(value);
        }
    }

    /// <summary>Reads a string or nil.</summary>
    public static string? ReadNullableString(ref MessagePackReader r) => r.TryReadNil() ? null : r.ReadString();

    /// <summary>Reads an error code written as an integer.</summary>
    public static ErrorCode ReadError(ref MessagePackReader r) => (ErrorCode)r.ReadInt32();
}
