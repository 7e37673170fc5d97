using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Gateway.Storage.RocksDb.Internal;

/// <summary>
/// The key layout. Every key starts with a one-byte kind; every string component is UTF-8 behind a one-byte
/// length; integers are big-endian so that byte order is numeric order. The length prefixes are what make prefix
/// scans exact: tenant "a" + chat "bc" (<c>01 61 02 62 63</c>) can never be confused with tenant "ab" + chat "c"
/// (<c>02 61 62 01 63</c>), and chat "a" is never a prefix of chat "ab" because their length bytes differ.
/// </summary>
/// <remarks>
/// <code>
/// 0x01 tenant chat seq(u64 BE)     → message: MessagePack [version, messageId, senderId, sentAt, contentType,
///                                     content(bin), expiresAt|nil, clientMessageId]; tenant, chat, seq are the key
/// 0x02 tenant chat                 → chat head: highest committed seq, u64 BE (8 bytes)
/// 0x03 tenant sender clientMsgId   → idempotency: MessagePack [version, chatId, seq, messageId, sentAt]
/// 0x04 tenant chat user            → membership: MessagePack [version, joinedAt]
/// 0x05 tenant user chat            → reverse membership index (chats of a user): same value as 0x04
/// 0x06 tenant chat                 → chat marker (the chat exists): MessagePack [version, createdAt]
/// 0x07 log                         → projection checkpoint: position of the last applied entry of that log, u64 BE
/// </code>
/// </remarks>
internal static class Keys
{
    public const byte Message = 0x01;
    public const byte Head = 0x02;
    public const byte Idempotency = 0x03;
    public const byte Member = 0x04;
    public const byte UserChat = 0x05;
    public const byte ChatMarker = 0x06;
    public const byte Checkpoint = 0x07;

    /// <summary>Longest string component: what one length byte can say.</summary>
    public const int MaxComponentBytes = byte.MaxValue;

    /// <summary>Longest key: kind byte + three length-prefixed components + a u64 = 1 + 3 × (1 + 255) + 8 = 777.</summary>
    public const int MaxKeyBytes = 1 + (3 * (1 + MaxComponentBytes)) + sizeof(ulong);

    /// <summary>Writes kind + one component; returns the length written.</summary>
    public static int Write(Span<byte> key, byte kind, string a)
    {
        key[0] = kind;
        return 1 + WriteComponent(key[1..], a);
    }

    /// <summary>Writes kind + two components; returns the length written.</summary>
    public static int Write(Span<byte> key, byte kind, string a, string b)
    {
        var n = Write(key, kind, a);
        return n + WriteComponent(key[n..], b);
    }

    /// <summary>Writes kind + three components; returns the length written.</summary>
    public static int Write(Span<byte> key, byte kind, string a, string b, string c)
    {
        var n = Write(key, kind, a, b);
        return n + WriteComponent(key[n..], c);
    }

    /// <summary>Writes a message key; returns the length written.</summary>
    public static int WriteMessage(Span<byte> key, string tenantId, string chatId, ulong seq)
    {
        var n = Write(key, Message, tenantId, chatId);
        BinaryPrimitives.WriteUInt64BigEndian(key[n..], seq);
        return n + sizeof(ulong);
    }

    /// <summary>
    /// Turns <paramref name="prefix"/> into the smallest key greater than every key that starts with it, in place:
    /// drop trailing 0xFF bytes, then add one to the last byte. Every key starts with a kind byte below 0xFF, so
    /// the result is never empty. Returns the new length.
    /// </summary>
    public static int PrefixSuccessor(Span<byte> prefix)
    {
        var n = prefix.Length;
        while (prefix[n - 1] == 0xFF)
        {
            n--;
        }

        prefix[n - 1]++;
        return n;
    }

    /// <summary>Reads the length-prefixed component at the start of <paramref name="span"/>.</summary>
    public static string ReadComponent(ReadOnlySpan<byte> span)
    {
        var length = span[0];
        if (span.Length < 1 + length)
        {
            ThrowCorrupt();
        }

        return Encoding.UTF8.GetString(span.Slice(1, length));
    }

    [DoesNotReturn]
    public static void ThrowCorrupt() => throw new InvalidDataException("A stored key or value is malformed.");

    private static int WriteComponent(Span<byte> key, string value)
    {
        ArgumentNullException.ThrowIfNull(value);

        // Ids are ASCII once validated, but the store does not rely on it: measure the real UTF-8 length.
        var length = Encoding.UTF8.GetByteCount(value);
        if (length > MaxComponentBytes)
        {
            ThrowTooLong();
        }

        key[0] = (byte)length;
        return 1 + Encoding.UTF8.GetBytes(value, key[1..]);
    }

    [DoesNotReturn]
    private static void ThrowTooLong() =>
        throw new ArgumentException($"An id is longer than {MaxComponentBytes} UTF-8 bytes and cannot be part of a key.");
}
