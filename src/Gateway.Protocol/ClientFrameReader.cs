using System.Buffers;
using MessagePack;

namespace Gateway.Protocol;

/// <summary>Outcome of <see cref="ClientFrameReader.TryRead"/>.</summary>
public enum ReadStatus
{
    /// <summary>A frame was read.</summary>
    Ok,

    /// <summary>The payload is not a well-formed MessagePack array with an integer type tag: close 1007.</summary>
    Malformed,

    /// <summary>The type tag is unknown: answer <see cref="ErrorCode.UnknownFrameType"/>, keep the connection.</summary>
    UnknownType,

    /// <summary>The frame type is known but its fields are wrong: answer <see cref="ErrorCode.InvalidFrame"/>.</summary>
    Invalid,
}

/// <summary>
/// Reads client frames (one WebSocket message each) without copying or allocating on success.
/// Trailing array elements beyond the known fields are skipped, so newer clients can add fields.
/// </summary>
public static class ClientFrameReader
{
    /// <summary>Reads one client frame from a whole WebSocket message payload.</summary>
    /// <param name="payload">The message payload; the frame's slices point into it.</param>
    /// <param name="frame">The frame; meaningful when the result is <see cref="ReadStatus.Ok"/>. For other
    /// results its <see cref="ClientFrame.Type"/> and <see cref="ClientFrame.RequestId"/> are set when they could be read
    /// (Type is 0 for a tag above 255).</param>
    public static ReadStatus TryRead(in ReadOnlySequence<byte> payload, out ClientFrame frame)
    {
        frame = default;
        var reader = new MessagePackReader(payload);
        int count;
        uint tag;
        try
        {
            if (reader.End || reader.NextMessagePackType != MessagePackType.Array)
            {
                return ReadStatus.Malformed;
            }

            count = reader.ReadArrayHeader();
            if (count < 1 || reader.NextMessagePackType != MessagePackType.Integer)
            {
                return ReadStatus.Malformed;
            }

            tag = reader.ReadUInt32();
        }
        catch (Exception e) when (IsBadInput(e))
        {
            return ReadStatus.Malformed;
        }

        // FrameType is a byte: a plain cast would alias tag 257 to Subscribe (257 mod 256 = 1). Tags that do not
        // fit are unknown; they keep Type 0, which no frame uses.
        var type = tag <= byte.MaxValue ? (FrameType)tag : default;
        uint requestId = 0;
        try
        {
            if (count >= 2 && reader.NextMessagePackType == MessagePackType.Integer)
            {
                requestId = reader.ReadUInt32();
            }
            else
            {
                frame = new ClientFrame { Type = type };
                return IsClientFrameType(type) ? ReadStatus.Invalid : Unknown(ref reader, count - 1);
            }

            var status = type switch
            {
                FrameType.Subscribe => ReadItems(ref reader, count, 3, type, requestId, out frame),
                FrameType.Unsubscribe => ReadItems(ref reader, count, 3, type, requestId, out frame),
                FrameType.Send => ReadSend(ref reader, count, requestId, out frame),
                FrameType.History => ReadHistory(ref reader, count, requestId, out frame),
                FrameType.Typing => ReadOneString(ref reader, count, type, requestId, out frame),
                FrameType.RefreshToken => ReadOneString(ref reader, count, type, requestId, out frame),
                _ => Unknown(ref reader, count - 2),
            };
            if (status != ReadStatus.Ok)
            {
                frame = new ClientFrame { Type = type, RequestId = requestId };
                return status;
            }

            // The whole payload must be exactly one MessagePack value.
            if (!reader.End)
            {
                frame = new ClientFrame { Type = type, RequestId = requestId };
                return ReadStatus.Malformed;
            }

            return ReadStatus.Ok;
        }
        catch (Exception e) when (IsBadInput(e))
        {
            frame = new ClientFrame { Type = type, RequestId = requestId };
            return ReadStatus.Invalid;
        }
    }

    /// <summary>
    /// The exceptions <see cref="MessagePackReader"/> (and <see cref="ThrowTooDeep"/>) raise for bad input. Besides
    /// the documented two, <c>Skip</c> over a str32/bin32 header announcing ~4 GiB throws
    /// <see cref="ArgumentOutOfRangeException"/> from its internal SequenceReader instead of EndOfStreamException.
    /// </summary>
    internal static bool IsBadInput(Exception e) =>
        e is MessagePackSerializationException or EndOfStreamException or OverflowException or InvalidOperationException
            or ArgumentOutOfRangeException;

    private static ReadStatus ReadItems(ref MessagePackReader reader, int count, int minCount, FrameType type, uint requestId, out ClientFrame frame)
    {
        frame = default;
        if (count < minCount || reader.NextMessagePackType != MessagePackType.Array)
        {
            return ReadStatus.Invalid;
        }

        var items = reader.ReadArrayHeader();
        var itemsStart = reader.Position;
        for (var i = 0; i < items; i++)
        {
            if (type == FrameType.Subscribe)
            {
                // [chatId:str, afterSeq:uint64, ...ignored]
                if (reader.NextMessagePackType != MessagePackType.Array)
                {
                    return ReadStatus.Invalid;
                }

                var n = reader.ReadArrayHeader();
                if (n < 2 || reader.NextMessagePackType != MessagePackType.String)
                {
                    return ReadStatus.Invalid;
                }

                reader.Skip();
                if (reader.NextMessagePackType != MessagePackType.Integer)
                {
                    return ReadStatus.Invalid;
                }

                _ = reader.ReadUInt64(); // throws OverflowException on a negative cursor -> Invalid
                SkipRest(ref reader, n - 2);
            }
            else if (reader.NextMessagePackType != MessagePackType.String)
            {
                return ReadStatus.Invalid;
            }
            else
            {
                reader.Skip();
            }
        }

        var raw = reader.Sequence.Slice(itemsStart, reader.Position);
        SkipRest(ref reader, count - 3);
        frame = new ClientFrame { Type = type, RequestId = requestId, ItemCount = items, Items = raw };
        return ReadStatus.Ok;
    }

    private static ReadStatus ReadSend(ref MessagePackReader reader, int count, uint requestId, out ClientFrame frame)
    {
        // [3, requestId, chatId, clientMessageId, contentType, content, expiresAt|nil, traceparent|nil, tracestate|nil]
        // The last two are a v1 addition and optional: absent, nil or of another type they are ignored (never Invalid),
        // so a frame from a client that appended something else there still reads as before.
        frame = default;
        if (count < 7)
        {
            return ReadStatus.Invalid;
        }

        if (!TryReadStr(ref reader, out var chatId) || !TryReadStr(ref reader, out var clientMessageId) ||
            !TryReadStr(ref reader, out var contentType))
        {
            return ReadStatus.Invalid;
        }

        if (reader.NextMessagePackType != MessagePackType.Binary)
        {
            return ReadStatus.Invalid;
        }

        var content = reader.ReadBytes()!.Value;
        long? expiresAt = null;
        if (!reader.TryReadNil())
        {
            if (reader.NextMessagePackType != MessagePackType.Integer)
            {
                return ReadStatus.Invalid;
            }

            expiresAt = reader.ReadInt64();
        }

        var traceParent = count > 7 ? ReadOptionalStr(ref reader) : default;
        var traceState = count > 8 ? ReadOptionalStr(ref reader) : default;
        SkipRest(ref reader, count - 9);
        frame = new ClientFrame
        {
            Type = FrameType.Send,
            RequestId = requestId,
            ChatId = chatId,
            ClientMessageId = clientMessageId,
            ContentType = contentType,
            Content = content,
            ExpiresAt = expiresAt,
            TraceParent = traceParent,
            TraceState = traceState,
        };
        return ReadStatus.Ok;
    }

    private static ReadStatus ReadHistory(ref MessagePackReader reader, int count, uint requestId, out ClientFrame frame)
    {
        // [4, requestId, chatId, beforeSeq, limit]
        frame = default;
        if (count < 5 || !TryReadStr(ref reader, out var chatId) || reader.NextMessagePackType != MessagePackType.Integer)
        {
            return ReadStatus.Invalid;
        }

        var beforeSeq = reader.ReadUInt64();
        if (reader.NextMessagePackType != MessagePackType.Integer)
        {
            return ReadStatus.Invalid;
        }

        var limit = reader.ReadUInt32();
        SkipRest(ref reader, count - 5);
        frame = new ClientFrame { Type = FrameType.History, RequestId = requestId, ChatId = chatId, BeforeSeq = beforeSeq, Limit = limit };
        return ReadStatus.Ok;
    }

    /// <summary>The client frame types this reader knows; one list, so a new type cannot be half-added.</summary>
    private static bool IsClientFrameType(FrameType type) => type is FrameType.Subscribe or FrameType.Unsubscribe or FrameType.Send
        or FrameType.History or FrameType.Typing or FrameType.RefreshToken;

    private static ReadStatus ReadOneString(ref MessagePackReader reader, int count, FrameType type, uint requestId, out ClientFrame frame)
    {
        // Typing: [5, requestId, chatId]; RefreshToken: [6, requestId, token]
        frame = default;
        if (count < 3 || !TryReadStr(ref reader, out var value))
        {
            return ReadStatus.Invalid;
        }

        SkipRest(ref reader, count - 3);
        frame = type == FrameType.Typing
            ? new ClientFrame { Type = type, RequestId = requestId, ChatId = value }
            : new ClientFrame { Type = type, RequestId = requestId, Token = value };
        return ReadStatus.Ok;
    }

    private static bool TryReadStr(ref MessagePackReader reader, out ReadOnlySequence<byte> value)
    {
        if (reader.NextMessagePackType != MessagePackType.String)
        {
            value = default;
            return false;
        }

        value = reader.ReadStringSequence()!.Value;
        return true;
    }

    /// <summary>An optional str field: its bytes, or empty when it is nil or any other value (skipped like an ignored field).</summary>
    private static ReadOnlySequence<byte> ReadOptionalStr(ref MessagePackReader reader)
    {
        if (reader.NextMessagePackType == MessagePackType.String)
        {
            return reader.ReadStringSequence()!.Value;
        }

        SafeSkip(ref reader, 0);
        return default;
    }

    /// <summary>
    /// The answer to an unknown tag whose array has <paramref name="remaining"/> elements left: UnknownType, unless bytes
    /// follow the array, which makes the payload malformed whatever the tag (§3: exactly one MessagePack value).
    /// </summary>
    private static ReadStatus Unknown(ref MessagePackReader reader, int remaining)
    {
        try
        {
            SkipRest(ref reader, remaining);
        }
        catch (Exception e) when (IsBadInput(e))
        {
            // Cut inside an element, or nested deeper than we skip: where the array ends is unknown, and the frame's
            // type is what the client needs to hear about.
            return ReadStatus.UnknownType;
        }

        return reader.End ? ReadStatus.UnknownType : ReadStatus.Malformed;
    }

    private static void SkipRest(ref MessagePackReader reader, int extra)
    {
        for (var i = 0; i < extra; i++)
        {
            SafeSkip(ref reader, 0);
        }
    }

    /// <summary>Most nesting accepted inside ignored trailing fields.</summary>
    private const int MaxSkipDepth = 8;

    // MessagePackReader.Skip recurses without a depth limit: 64 KiB of 0x91 would overflow the stack.
    // Ignored fields are skipped here with a bounded depth instead (deeper input is Invalid).
    private static void SafeSkip(ref MessagePackReader reader, int depth)
    {
        if (depth > MaxSkipDepth)
        {
            ThrowTooDeep();
        }

        switch (reader.NextMessagePackType)
        {
            case MessagePackType.Array:
                var n = reader.ReadArrayHeader();
                for (var i = 0; i < n; i++)
                {
                    SafeSkip(ref reader, depth + 1);
                }

                break;
            case MessagePackType.Map:
                var m = reader.ReadMapHeader();
                for (var i = 0; i < m * 2; i++)
                {
                    SafeSkip(ref reader, depth + 1);
                }

                break;
            default:
                reader.Skip();
                break;
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowTooDeep() => throw new InvalidOperationException("Ignored field nested too deeply.");
}

/// <summary>Enumerates the entries of a Subscribe or Unsubscribe frame without allocating.</summary>
public ref struct SubscribeItemReader
{
    private MessagePackReader _reader;
    private int _remaining;
    private readonly bool _withCursor;

    /// <summary>Starts reading the entries of <paramref name="frame"/>.</summary>
    public SubscribeItemReader(in ClientFrame frame)
    {
        _reader = new MessagePackReader(frame.Items);
        _remaining = frame.ItemCount;
        _withCursor = frame.Type == FrameType.Subscribe;
    }

    /// <summary>Reads the next entry. <paramref name="afterSeq"/> is 0 for Unsubscribe entries.</summary>
    public bool TryNext(out ReadOnlySequence<byte> chatId, out ulong afterSeq)
    {
        if (_remaining == 0)
        {
            chatId = default;
            afterSeq = 0;
            return false;
        }

        _remaining--;
        if (_withCursor)
        {
            // Entry shape was checked by ClientFrameReader: [chatId, afterSeq, ...ignored].
            var n = _reader.ReadArrayHeader();
            chatId = _reader.ReadStringSequence()!.Value;
            afterSeq = _reader.ReadUInt64();
            for (var i = 2; i < n; i++)
            {
                _reader.Skip(); // depth already bounded by ClientFrameReader's validation
            }
        }
        else
        {
            chatId = _reader.ReadStringSequence()!.Value;
            afterSeq = 0;
        }

        return true;
    }
}
