using System.Buffers;
using MessagePack;

namespace Gateway.Protocol;

/// <summary>
/// A decoded server frame, as a client sees it. These types allocate; they are for clients, tools and tests.
/// The server writes frames with <see cref="ServerFrameWriter"/> and never builds these objects.
/// </summary>
public abstract record ServerFrame
{
    /// <summary>The frame's type tag.</summary>
    public abstract FrameType Type { get; }

    /// <summary>Writes this frame exactly as the server would.</summary>
    public abstract void WriteTo(IBufferWriter<byte> output);

    /// <summary>Decodes one server frame. Returns null for an unknown type tag (clients ignore those).</summary>
    /// <exception cref="FormatException">The payload is not a valid server frame.</exception>
    public static ServerFrame? Decode(ReadOnlySequence<byte> payload)
    {
        try
        {
            var r = new MessagePackReader(payload);
            var count = r.ReadArrayHeader();
            var tag = r.ReadUInt32();
            if (tag > byte.MaxValue)
            {
                // FrameType is a byte: a plain cast would alias tag 289 to Subscribed (289 mod 256 = 33).
                return null;
            }

            var type = (FrameType)tag;
            if (count < FieldCount(type))
            {
                // Without this check the reads below would take the fields from whatever follows a short array.
                throw new FormatException($"Frame type {tag} needs {FieldCount(type)} elements, got {count}.");
            }

            ServerFrame? frame = type switch
            {
                FrameType.Hello => new HelloFrame(r.ReadUInt32(), Str(ref r), Str(ref r), Str(ref r), r.ReadUInt32(), r.ReadUInt32(), r.ReadUInt32(), r.ReadInt64()),
                FrameType.Subscribed => ReadSubscribed(ref r),
                FrameType.Unsubscribed => new UnsubscribedFrame(r.ReadUInt32()),
                FrameType.SendAck => new SendAckFrame(r.ReadUInt32(), Str(ref r), r.ReadUInt64(), Str(ref r), r.ReadInt64(), r.ReadBoolean()),
                FrameType.Error => new ErrorFrame(r.ReadUInt32(), (ErrorCode)r.ReadUInt16(), Str(ref r), count > 4 ? r.ReadUInt32() : 0),
                FrameType.Message => new MessageFrame(Str(ref r), ReadMessageBody(ref r)),
                FrameType.CaughtUp => new CaughtUpFrame(Str(ref r), r.ReadUInt64()),
                FrameType.HistoryPage => ReadHistoryPage(ref r),
                FrameType.Revoked => new RevokedFrame(Str(ref r), (ErrorCode)r.ReadUInt16(), Str(ref r)),
                FrameType.TokenRefreshed => new TokenRefreshedFrame(r.ReadUInt32(), r.ReadInt64()),
                FrameType.UserTyping => new UserTypingFrame(Str(ref r), Str(ref r)),
                FrameType.TokenExpiring => new TokenExpiringFrame(r.ReadInt64(), r.ReadInt64()),
                FrameType.Drain => new DrainFrame(r.ReadUInt32(), Str(ref r)),
                _ => null,
            };
            if (frame is null)
            {
                return null;
            }

            // Newer servers may append fields: skip them.
            for (var i = type == FrameType.Error && count > 4 ? 5 : FieldCount(type); i < count; i++)
            {
                r.Skip();
            }

            return r.End ? frame : throw new FormatException("Trailing bytes after the frame.");
        }
        catch (Exception e) when (ClientFrameReader.IsBadInput(e))
        {
            throw new FormatException("Malformed server frame: " + e.Message, e);
        }
    }

    private static int FieldCount(FrameType type) => type switch
    {
        FrameType.Hello => 9,
        FrameType.Subscribed => 3,
        FrameType.Unsubscribed => 2,
        FrameType.SendAck => 7,
        FrameType.Error => 4,
        FrameType.Message => 9,
        FrameType.CaughtUp => 3,
        FrameType.HistoryPage => 5,
        FrameType.Revoked => 4,
        FrameType.TokenRefreshed => 3,
        FrameType.UserTyping => 3,
        FrameType.TokenExpiring => 3,
        FrameType.Drain => 3,
        _ => 0,
    };

    private static string Str(ref MessagePackReader r) => r.ReadString() ?? throw new FormatException("Unexpected nil string.");

    private static SubscribedFrame ReadSubscribed(ref MessagePackReader r)
    {
        var requestId = r.ReadUInt32();
        var n = r.ReadArrayHeader();
        var results = new SubscribeResult[n];
        for (var i = 0; i < n; i++)
        {
            var m = r.ReadArrayHeader();
            if (m < 3)
            {
                throw new FormatException("A Subscribed result needs 3 elements.");
            }

            results[i] = new SubscribeResult(Str(ref r), (ErrorCode)r.ReadUInt16(), r.ReadUInt64());
            for (var j = 3; j < m; j++)
            {
                r.Skip();
            }
        }

        return new SubscribedFrame(requestId, results);
    }

    private static HistoryPageFrame ReadHistoryPage(ref MessagePackReader r)
    {
        var requestId = r.ReadUInt32();
        var chatId = Str(ref r);
        var n = r.ReadArrayHeader();
        var messages = new MessageFields[n];
        for (var i = 0; i < n; i++)
        {
            var m = r.ReadArrayHeader();
            if (m < 7)
            {
                throw new FormatException("A HistoryPage message needs 7 elements.");
            }

            messages[i] = ReadMessageBody(ref r);
            for (var j = 7; j < m; j++)
            {
                r.Skip();
            }
        }

        return new HistoryPageFrame(requestId, chatId, messages, r.ReadBoolean());
    }

    private static MessageFields ReadMessageBody(ref MessagePackReader r)
    {
        var seq = r.ReadUInt64();
        var messageId = Str(ref r);
        var senderId = Str(ref r);
        var sentAt = r.ReadInt64();
        var contentType = Str(ref r);
        var content = (r.ReadBytes() ?? throw new FormatException("Unexpected nil content.")).ToArray();
        long? expiresAt = r.TryReadNil() ? null : r.ReadInt64();
        return new MessageFields(seq, messageId, senderId, sentAt, contentType, content, expiresAt);
    }
}

/// <summary>First frame after the handshake.</summary>
public sealed record HelloFrame(uint Version, string SessionId, string TenantId, string UserId,
    uint MaxMessageBytes, uint MaxContentBytes, uint HeartbeatSeconds, long TokenExpiresAt) : ServerFrame
{
    /// <inheritdoc/>
    public override FrameType Type => FrameType.Hello;

    /// <inheritdoc/>
    public override void WriteTo(IBufferWriter<byte> output) =>
        ServerFrameWriter.WriteHello(output, SessionId, TenantId, UserId, MaxMessageBytes, MaxContentBytes, HeartbeatSeconds, TokenExpiresAt);
}

/// <summary>Answer to Subscribe.</summary>
public sealed record SubscribedFrame(uint RequestId, IReadOnlyList<SubscribeResult> Results) : ServerFrame
{
    /// <inheritdoc/>
    public override FrameType Type => FrameType.Subscribed;

    /// <inheritdoc/>
    public override void WriteTo(IBufferWriter<byte> output) =>
        ServerFrameWriter.WriteSubscribed(output, RequestId, Results.ToArray());
}

/// <summary>Answer to Unsubscribe.</summary>
public sealed record UnsubscribedFrame(uint RequestId) : ServerFrame
{
    /// <inheritdoc/>
    public override FrameType Type => FrameType.Unsubscribed;

    /// <inheritdoc/>
    public override void WriteTo(IBufferWriter<byte> output) => ServerFrameWriter.WriteUnsubscribed(output, RequestId);
}

/// <summary>A Send is durable under <see cref="Seq"/>.</summary>
public sealed record SendAckFrame(uint RequestId, string ChatId, ulong Seq, string MessageId, long SentAt, bool Duplicate) : ServerFrame
{
    /// <inheritdoc/>
    public override FrameType Type => FrameType.SendAck;

    /// <inheritdoc/>
    public override void WriteTo(IBufferWriter<byte> output) =>
        ServerFrameWriter.WriteSendAck(output, RequestId, ChatId, Seq, MessageId, SentAt, Duplicate);
}

/// <summary>A request failed. <see cref="RetryAfterMs"/> (0 = none) says when a retry may succeed (RateLimited).</summary>
public sealed record ErrorFrame(uint RequestId, ErrorCode Code, string Message, uint RetryAfterMs = 0) : ServerFrame
{
    /// <inheritdoc/>
    public override FrameType Type => FrameType.Error;

    /// <inheritdoc/>
    public override void WriteTo(IBufferWriter<byte> output) => ServerFrameWriter.WriteError(output, RequestId, Code, Message, RetryAfterMs);
}

/// <summary>One chat message.</summary>
public sealed record MessageFrame(string ChatId, MessageFields Message) : ServerFrame
{
    /// <inheritdoc/>
    public override FrameType Type => FrameType.Message;

    /// <inheritdoc/>
    public override void WriteTo(IBufferWriter<byte> output) => ServerFrameWriter.WriteMessage(output, ChatId, Message);
}

/// <summary>History replay complete up to <see cref="Seq"/>; live messages follow.</summary>
public sealed record CaughtUpFrame(string ChatId, ulong Seq) : ServerFrame
{
    /// <inheritdoc/>
    public override FrameType Type => FrameType.CaughtUp;

    /// <inheritdoc/>
    public override void WriteTo(IBufferWriter<byte> output) => ServerFrameWriter.WriteCaughtUp(output, ChatId, Seq);
}

/// <summary>Answer to History.</summary>
public sealed record HistoryPageFrame(uint RequestId, string ChatId, IReadOnlyList<MessageFields> Messages, bool HasMore) : ServerFrame
{
    /// <inheritdoc/>
    public override FrameType Type => FrameType.HistoryPage;

    /// <inheritdoc/>
    public override void WriteTo(IBufferWriter<byte> output) =>
        ServerFrameWriter.WriteHistoryPage(output, RequestId, ChatId, Messages.ToArray(), HasMore);
}

/// <summary>The server ended a subscription.</summary>
public sealed record RevokedFrame(string ChatId, ErrorCode Code, string Message) : ServerFrame
{
    /// <inheritdoc/>
    public override FrameType Type => FrameType.Revoked;

    /// <inheritdoc/>
    public override void WriteTo(IBufferWriter<byte> output) => ServerFrameWriter.WriteRevoked(output, ChatId, Code, Message);
}

/// <summary>The connection's token was replaced; it now lives until <see cref="ExpiresAt"/> (Unix ms).</summary>
public sealed record TokenRefreshedFrame(uint RequestId, long ExpiresAt) : ServerFrame
{
    /// <inheritdoc/>
    public override FrameType Type => FrameType.TokenRefreshed;

    /// <inheritdoc/>
    public override void WriteTo(IBufferWriter<byte> output) => ServerFrameWriter.WriteTokenRefreshed(output, RequestId, ExpiresAt);
}

/// <summary>A member is typing in a subscribed chat. Ephemeral: may be dropped, never replayed.</summary>
public sealed record UserTypingFrame(string ChatId, string UserId) : ServerFrame
{
    /// <inheritdoc/>
    public override FrameType Type => FrameType.UserTyping;

    /// <inheritdoc/>
    public override void WriteTo(IBufferWriter<byte> output) => ServerFrameWriter.WriteUserTyping(output, ChatId, UserId);
}

/// <summary>The token expires at <see cref="ExpiresAt"/>; the connection closes with 4001 at <see cref="CloseAt"/> unless refreshed.</summary>
public sealed record TokenExpiringFrame(long ExpiresAt, long CloseAt) : ServerFrame
{
    /// <inheritdoc/>
    public override FrameType Type => FrameType.TokenExpiring;

    /// <inheritdoc/>
    public override void WriteTo(IBufferWriter<byte> output) => ServerFrameWriter.WriteTokenExpiring(output, ExpiresAt, CloseAt);
}

/// <summary>The server is draining: reconnect after <see cref="ReconnectAfterMs"/> (jittered per connection).</summary>
public sealed record DrainFrame(uint ReconnectAfterMs, string Message) : ServerFrame
{
    /// <inheritdoc/>
    public override FrameType Type => FrameType.Drain;

    /// <inheritdoc/>
    public override void WriteTo(IBufferWriter<byte> output) => ServerFrameWriter.WriteDrain(output, ReconnectAfterMs, Message);
}
