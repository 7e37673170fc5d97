using System.Buffers;
using System.Buffers.Binary;
using Gateway.Domain;
using Gateway.Domain.Ports;
using MessagePack;

namespace Gateway.Storage.RocksDb.Internal;

/// <summary>
/// Hand-written MessagePack encodings of the stored values. Each value is an array whose first element is a
/// format version, so a later format can be read side by side with this one.
/// </summary>
internal static class Values
{
    /// <summary>Format version of every value written by this code.</summary>
    public const int Version = 1;

    private const int MessageFields = 8;
    // [version, chatId, seq, messageId, sentAt, payloadDigest]. Records written before the digest was kept have the first
    // five only; they are still read, and match a retry of any payload.
    private const int IdempotencyFields = 6;
    private const int IdempotencyFieldsWithoutDigest = 5;
    private const int DigestBytes = 16;
    private const int TimestampFields = 2;

    /// <summary>Writes a message value; tenant, chat and seq live in the key and are not repeated.</summary>
    public static void WriteMessage(IBufferWriter<byte> output, ChatMessage message)
    {
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(MessageFields);
        writer.Write(Version);
        writer.Write(message.MessageId);
        writer.Write(message.SenderId);
        writer.Write(message.SentAt);
        writer.Write(message.ContentType);
        writer.Write(message.Content.Span);
        if (message.ExpiresAt is { } expiresAt)
        {
            writer.Write(expiresAt);
        }
        else
        {
            writer.WriteNil();
        }

        writer.Write(message.ClientMessageId);
        writer.Flush();
    }

    /// <summary>
    /// Reads a message value. <paramref name="value"/> must be owned by the caller: the content is a slice of it,
    /// not a copy.
    /// </summary>
    public static ChatMessage ReadMessage(ReadOnlyMemory<byte> value, string tenantId, string chatId, ulong seq)
    {
        var reader = new MessagePackReader(value);
        ReadHeader(ref reader, MessageFields);
        var messageId = ReadString(ref reader);
        var senderId = ReadString(ref reader);
        var sentAt = reader.ReadInt64();
        var contentType = ReadString(ref reader);
        ReadOnlyMemory<byte> content = default;
        if (reader.ReadBytes() is { } bytes)
        {
            // The reader runs over one contiguous array, so the sequence has one segment: slice it, no copy.
            content = bytes.IsSingleSegment ? bytes.First : bytes.ToArray();
        }

        long? expiresAt = reader.TryReadNil() ? null : reader.ReadInt64();
        var clientMessageId = ReadString(ref reader);
        return new ChatMessage(tenantId, chatId, seq, messageId, senderId, sentAt, contentType, content, expiresAt, clientMessageId);
    }

    /// <summary>Writes an idempotency record.</summary>
    public static void WriteIdempotency(IBufferWriter<byte> output, ChatMessage message) => WriteIdempotency(output, message, withDigest: true);

    /// <summary>Writes an idempotency record as it was written before digests were kept (for compatibility tests).</summary>
    internal static void WriteIdempotencyWithoutDigest(IBufferWriter<byte> output, ChatMessage message) => WriteIdempotency(output, message, withDigest: false);

    private static void WriteIdempotency(IBufferWriter<byte> output, ChatMessage message, bool withDigest)
    {
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(withDigest ? IdempotencyFields : IdempotencyFieldsWithoutDigest);
        writer.Write(Version);
        writer.Write(message.ChatId);
        writer.Write(message.Seq);
        writer.Write(message.MessageId);
        writer.Write(message.SentAt);
        if (withDigest)
        {
            writer.WriteBinHeader(DigestBytes);
            BinaryPrimitives.WriteUInt128BigEndian(writer.GetSpan(DigestBytes), PayloadDigest.Of(message));
            writer.Advance(DigestBytes);
        }

        writer.Flush();
    }

    /// <summary>Reads an idempotency record, with or without its payload digest.</summary>
    public static IdempotencyRecord ReadIdempotency(ReadOnlyMemory<byte> value)
    {
        var reader = new MessagePackReader(value);
        var count = reader.ReadArrayHeader();
        if (reader.ReadInt32() != Version || count is not (IdempotencyFields or IdempotencyFieldsWithoutDigest))
        {
            Keys.ThrowCorrupt();
        }

        var chatId = ReadString(ref reader);
        var seq = reader.ReadUInt64();
        var messageId = ReadString(ref reader);
        var sentAt = reader.ReadInt64();
        UInt128? digest = null;
        if (count == IdempotencyFields)
        {
            var bytes = reader.ReadBytes();
            if (bytes is not { Length: DigestBytes } b)
            {
                Keys.ThrowCorrupt();
                return null!;
            }

            Span<byte> span = stackalloc byte[DigestBytes];
            b.CopyTo(span);
            digest = BinaryPrimitives.ReadUInt128BigEndian(span);
        }

        return new IdempotencyRecord(chatId, seq, messageId, sentAt, digest);
    }

    /// <summary>Writes <c>[version, unixMs]</c>: the value of membership rows and chat markers.</summary>
    public static void WriteTimestamp(IBufferWriter<byte> output, long unixMs)
    {
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(TimestampFields);
        writer.Write(Version);
        writer.Write(unixMs);
        writer.Flush();
    }

    /// <summary>Reads <c>[version, unixMs]</c>.</summary>
    public static long ReadTimestamp(ReadOnlyMemory<byte> value)
    {
        var reader = new MessagePackReader(value);
        ReadHeader(ref reader, TimestampFields);
        return reader.ReadInt64();
    }

    private static void ReadHeader(ref MessagePackReader reader, int fields)
    {
        // Only version 1 exists: an unknown version is refused rather than misread.
        var count = reader.ReadArrayHeader();
        var version = reader.ReadInt32();
        if (version != Version || count != fields)
        {
            Keys.ThrowCorrupt();
        }
    }

    private static string ReadString(ref MessagePackReader reader)
    {
        var value = reader.ReadString();
        if (value is null)
        {
            Keys.ThrowCorrupt();
        }

        return value;
    }
}
