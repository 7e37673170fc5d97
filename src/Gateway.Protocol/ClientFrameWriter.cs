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
        string contentType, ReadOnlySpan<byte> content, long? expiresAt)
    {
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(7);
        w.Write((uint)FrameType.Send);
        w.Write(requestId);
        w.Write(chatId);
        w.Write(clientMessageId);
        w.Write(contentType);
        w.Write(content);
        WriteNullable(ref w, expiresAt);
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
