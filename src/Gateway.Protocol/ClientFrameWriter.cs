using System.Buffers;
using MessagePack;

namespace Gateway.Protocol;

/// <summary>Writes client frames (what a client sends). Used by client libraries and the golden vectors.</summary>
public static class ClientFrameWriter
{
    /// <summary>[1, requestId, [[chatId, afterSeq], ...]]</summary>
    public static void WriteSubscribe(IBufferWriter<byte> output, uint requestId, IReadOnlyList<ChatCursor> cursors)
    {
        ArgumentNullException.ThrowIfNull(cursors);
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(3);
        w.Write((uint)FrameType.Subscribe);
        w.Write(requestId);
        w.WriteArrayHeader(cursors.Count);
        foreach (var c in cursors)
        {
            w.WriteArrayHeader(2);
            w.Write(c.ChatId);
            w.Write(c.AfterSeq);
        }

        w.Flush();
    }

    /// <summary>[2, requestId, [chatId, ...]]</summary>
    public static void WriteUnsubscribe(IBufferWriter<byte> output, uint requestId, IReadOnlyList<string> chatIds)
    {
        ArgumentNullException.ThrowIfNull(chatIds);
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(3);
        w.Write((uint)FrameType.Unsubscribe);
        w.Write(requestId);
        w.WriteArrayHeader(chatIds.Count);
        foreach (var id in chatIds)
        {
            w.Write(id);
        }

        w.Flush();
    }

    /// <summary>[3, requestId, chatId, clientMessageId, contentType, content, expiresAt|nil]</summary>
    public static void WriteSend(IBufferWriter<byte> output, uint requestId, string chatId, string clientMessageId,
        string contentType, ReadOnlySpan<byte> content, long? expiresAt) =>
        WriteSend(output, requestId, chatId, clientMessageId, contentType, content, expiresAt, null, null);

    /// <summary>
    /// [3, requestId, chatId, clientMessageId, contentType, content, expiresAt|nil, traceparent, tracestate]: the trace
    /// context elements are written only when there is one (7 elements without a traceparent, 8 without a tracestate),
    /// so a send without a trace context is byte for byte what a client before this addition writes.
    /// </summary>
    /// <param name="output">Where the frame goes.</param>
    /// <param name="requestId">Echoed in the answer.</param>
    /// <param name="chatId">The chat.</param>
    /// <param name="clientMessageId">The idempotency key.</param>
    /// <param name="contentType">The content type.</param>
    /// <param name="content">The content.</param>
    /// <param name="expiresAt">Expiry (Unix ms) or null.</param>
    /// <param name="traceParent">A W3C traceparent, or null (then <paramref name="traceState"/> is not written either).</param>
    /// <param name="traceState">A W3C tracestate, or null.</param>
    public static void WriteSend(IBufferWriter<byte> output, uint requestId, string chatId, string clientMessageId,
        string contentType, ReadOnlySpan<byte> content, long? expiresAt, string? traceParent, string? traceState)
    {
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(traceParent is null ? 7 : traceState is null ? 8 : 9);
        w.Write((uint)FrameType.Send);
        w.Write(requestId);
        w.Write(chatId);
        w.Write(clientMessageId);
        w.Write(contentType);
        w.Write(content);
        WriteNullable(ref w, expiresAt);
        if (traceParent is not null)
        {
            w.Write(traceParent);
            if (traceState is not null)
            {
                w.Write(traceState);
            }
        }

        w.Flush();
    }

    /// <summary>[4, requestId, chatId, beforeSeq, limit]</summary>
    public static void WriteHistory(IBufferWriter<byte> output, uint requestId, string chatId, ulong beforeSeq, uint limit)
    {
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(5);
        w.Write((uint)FrameType.History);
        w.Write(requestId);
        w.Write(chatId);
        w.Write(beforeSeq);
        w.Write(limit);
        w.Flush();
    }

    /// <summary>[5, requestId, chatId]</summary>
    public static void WriteTyping(IBufferWriter<byte> output, uint requestId, string chatId)
    {
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(3);
        w.Write((uint)FrameType.Typing);
        w.Write(requestId);
        w.Write(chatId);
        w.Flush();
    }

    /// <summary>[6, requestId, token]</summary>
    public static void WriteRefreshToken(IBufferWriter<byte> output, uint requestId, string token)
    {
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(3);
        w.Write((uint)FrameType.RefreshToken);
        w.Write(requestId);
        w.Write(token);
        w.Flush();
    }

    internal static void WriteNullable(ref MessagePackWriter w, long? value)
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
}

/// <summary>A chat and the last seq the client has; the server delivers messages with seq &gt; <see cref="AfterSeq"/>.</summary>
public readonly record struct ChatCursor(string ChatId, ulong AfterSeq);
