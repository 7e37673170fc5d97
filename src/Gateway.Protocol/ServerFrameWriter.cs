using System.Buffers;
using MessagePack;

namespace Gateway.Protocol;

/// <summary>
/// Writes server frames. Each method writes exactly one MessagePack array (one WebSocket message payload) and
/// allocates nothing: strings are encoded straight into the output.
/// </summary>
public static class ServerFrameWriter
{
    /// <summary>[32, version, sessionId, tenantId, userId, maxMessageBytes, maxContentBytes, heartbeatSeconds, tokenExpiresAt]</summary>
    public static void WriteHello(IBufferWriter<byte> output, string sessionId, string tenantId, string userId,
        uint maxMessageBytes, uint maxContentBytes, uint heartbeatSeconds, long tokenExpiresAt)
    {
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(9);
        w.Write((uint)FrameType.Hello);
        w.Write((uint)ProtocolConstants.Version);
        w.Write(sessionId);
        w.Write(tenantId);
        w.Write(userId);
        w.Write(maxMessageBytes);
        w.Write(maxContentBytes);
        w.Write(heartbeatSeconds);
        w.Write(tokenExpiresAt);
        w.Flush();
    }

    /// <summary>[33, requestId, [[chatId, code, headSeq], ...]]</summary>
    public static void WriteSubscribed(IBufferWriter<byte> output, uint requestId, ReadOnlySpan<SubscribeResult> results)
    {
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(3);
        w.Write((uint)FrameType.Subscribed);
        w.Write(requestId);
        w.WriteArrayHeader(results.Length);
        foreach (var r in results)
        {
            w.WriteArrayHeader(3);
            w.Write(r.ChatId);
            w.Write((uint)r.Code);
            w.Write(r.HeadSeq);
        }

        w.Flush();
    }

    /// <summary>[34, requestId]</summary>
    public static void WriteUnsubscribed(IBufferWriter<byte> output, uint requestId)
    {
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(2);
        w.Write((uint)FrameType.Unsubscribed);
        w.Write(requestId);
        w.Flush();
    }

    /// <summary>[35, requestId, chatId, seq, messageId, sentAt, duplicate]</summary>
    public static void WriteSendAck(IBufferWriter<byte> output, uint requestId, string chatId, ulong seq,
        string messageId, long sentAt, bool duplicate)
    {
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(7);
        w.Write((uint)FrameType.SendAck);
        w.Write(requestId);
        w.Write(chatId);
        w.Write(seq);
        w.Write(messageId);
        w.Write(sentAt);
        w.Write(duplicate);
        w.Flush();
    }

    /// <summary>[36, requestId, code, message] or, with a retry hint, [36, requestId, code, message, retryAfterMs];
    /// requestId 0 when the error answers no request.</summary>
    public static void WriteError(IBufferWriter<byte> output, uint requestId, ErrorCode code, string message, uint retryAfterMs = 0)
    {
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(retryAfterMs > 0 ? 5 : 4);
        w.Write((uint)FrameType.Error);
        w.Write(requestId);
        w.Write((uint)code);
        w.Write(message);
        if (retryAfterMs > 0)
        {
            w.Write(retryAfterMs);
        }

        w.Flush();
    }

    /// <summary>[37, chatId, seq, messageId, senderId, sentAt, contentType, content, expiresAt|nil]</summary>
    public static void WriteMessage(IBufferWriter<byte> output, string chatId, in MessageFields message)
    {
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(9);
        w.Write((uint)FrameType.Message);
        w.Write(chatId);
        WriteMessageBody(ref w, message);
        w.Flush();
    }

    /// <summary>[38, chatId, seq]: every message up to <paramref name="seq"/> was sent; live messages follow.</summary>
    public static void WriteCaughtUp(IBufferWriter<byte> output, string chatId, ulong seq)
    {
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(3);
        w.Write((uint)FrameType.CaughtUp);
        w.Write(chatId);
        w.Write(seq);
        w.Flush();
    }

    /// <summary>[39, requestId, chatId, [[seq, messageId, senderId, sentAt, contentType, content, expiresAt|nil], ...], hasMore]</summary>
    public static void WriteHistoryPage(IBufferWriter<byte> output, uint requestId, string chatId,
        ReadOnlySpan<MessageFields> messages, bool hasMore)
    {
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(5);
        w.Write((uint)FrameType.HistoryPage);
        w.Write(requestId);
        w.Write(chatId);
        w.WriteArrayHeader(messages.Length);
        foreach (ref readonly var m in messages)
        {
            w.WriteArrayHeader(7);
            WriteMessageBody(ref w, m);
        }

        w.Write(hasMore);
        w.Flush();
    }

    /// <summary>[40, chatId, code, message]</summary>
    public static void WriteRevoked(IBufferWriter<byte> output, string chatId, ErrorCode code, string message)
    {
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(4);
        w.Write((uint)FrameType.Revoked);
        w.Write(chatId);
        w.Write((uint)code);
        w.Write(message);
        w.Flush();
    }

    /// <summary>[41, requestId, expiresAt]</summary>
    public static void WriteTokenRefreshed(IBufferWriter<byte> output, uint requestId, long expiresAt)
    {
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(3);
        w.Write((uint)FrameType.TokenRefreshed);
        w.Write(requestId);
        w.Write(expiresAt);
        w.Flush();
    }

    /// <summary>[42, chatId, userId]</summary>
    public static void WriteUserTyping(IBufferWriter<byte> output, string chatId, string userId)
    {
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(3);
        w.Write((uint)FrameType.UserTyping);
        w.Write(chatId);
        w.Write(userId);
        w.Flush();
    }

    /// <summary>[43, expiresAt, closeAt]: the token expires at expiresAt; without a RefreshToken the connection is
    /// closed with 4001 at closeAt (expiresAt plus the grace period).</summary>
    public static void WriteTokenExpiring(IBufferWriter<byte> output, long expiresAt, long closeAt)
    {
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(3);
        w.Write((uint)FrameType.TokenExpiring);
        w.Write(expiresAt);
        w.Write(closeAt);
        w.Flush();
    }

    /// <summary>[44, reconnectAfterMs, message]</summary>
    public static void WriteDrain(IBufferWriter<byte> output, uint reconnectAfterMs, string message)
    {
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(3);
        w.Write((uint)FrameType.Drain);
        w.Write(reconnectAfterMs);
        w.Write(message);
        w.Flush();
    }

    private static void WriteMessageBody(ref MessagePackWriter w, in MessageFields m)
    {
        w.Write(m.Seq);
        w.Write(m.MessageId);
        w.Write(m.SenderId);
        w.Write(m.SentAt);
        w.Write(m.ContentType);
        w.Write(m.Content.Span);
        ClientFrameWriter.WriteNullable(ref w, m.ExpiresAt);
    }
}

/// <summary>One chat's result in a Subscribed frame.</summary>
public readonly record struct SubscribeResult(string ChatId, ErrorCode Code, ulong HeadSeq);

/// <summary>The fields of one chat message as it goes on the wire.</summary>
public readonly record struct MessageFields(
    ulong Seq, string MessageId, string SenderId, long SentAt, string ContentType, ReadOnlyMemory<byte> Content, long? ExpiresAt);
