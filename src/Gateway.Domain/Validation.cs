using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using Gateway.Protocol;

namespace Gateway.Domain;

/// <summary>
/// Syntax rules for ids and fields, usable both on decoded strings and on the raw UTF-8 spans a frame reader
/// holds. Every allowed character is ASCII, so a valid string has exactly as many UTF-8 bytes as chars and the
/// string and span overloads accept the same values. All methods are allocation-free and thread-safe.
/// </summary>
public static class Validation
{
    /// <summary>Default furthest <c>expiresAt</c> from now: 30 days, in milliseconds (30 × 86,400,000).</summary>
    public const long DefaultMaxExpiresInMs = 30L * 24 * 60 * 60 * 1000;

    /// <summary>Characters of chat and tenant ids. No '.', '*' or '>' because ids become NATS subject tokens.</summary>
    private const string IdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

    // Printable ASCII: ' ' (0x20) through '~' (0x7E). Ids (user ids, client message ids) start one later, at '!'
    // (0x21): a space in an id is almost always a bug and is invisible in logs; a content type needs it
    // ("text/plain; charset=utf-8").
    private const byte Space = 0x20;
    private const byte FirstIdChar = 0x21;
    private const byte LastPrintable = 0x7E;

    private static readonly SearchValues<char> IdChars = SearchValues.Create(IdAlphabet);
    private static readonly SearchValues<byte> IdBytes = SearchValues.Create(System.Text.Encoding.ASCII.GetBytes(IdAlphabet));

    /// <summary>True when <paramref name="value"/> is a valid chat or tenant id: 1..64 bytes of <c>[A-Za-z0-9_-]</c>.</summary>
    public static bool IsValidId([NotNullWhen(true)] string? value) =>
        value is { Length: > 0 and <= ProtocolConstants.MaxChatIdBytes } && !value.AsSpan().ContainsAnyExcept(IdChars);

    /// <summary>True when <paramref name="utf8"/> is a valid chat or tenant id: 1..64 bytes of <c>[A-Za-z0-9_-]</c>.</summary>
    public static bool IsValidId(ReadOnlySpan<byte> utf8) =>
        utf8.Length is > 0 and <= ProtocolConstants.MaxChatIdBytes && !utf8.ContainsAnyExcept(IdBytes);

    /// <summary>
    /// True when <paramref name="value"/> is a valid user id: 1..128 bytes of 0x21..0x7E except '/', and not "." or "..".
    /// </summary>
    /// <remarks>User ids are path segments of the HTTP API (<c>DELETE …/members/{userId}</c>): a '/' (even as %2F) or a
    /// dot segment (even as %2E%2E) cannot name a single segment through HTTP servers and clients, which split or
    /// normalize them, so such an id could be made a member but never removed. Every other printable character can be
    /// percent-encoded and arrives intact.</remarks>
    public static bool IsValidUserId([NotNullWhen(true)] string? value) =>
        IsPrintable(value, FirstIdChar, ProtocolConstants.MaxUserIdBytes) && !value.Contains('/', StringComparison.Ordinal) && value is not ("." or "..");

    /// <summary>True when <paramref name="utf8"/> is a valid user id: the same rule as the string overload.</summary>
    public static bool IsValidUserId(ReadOnlySpan<byte> utf8) =>
        IsPrintable(utf8, FirstIdChar, ProtocolConstants.MaxUserIdBytes) && !utf8.Contains((byte)'/')
        && !utf8.SequenceEqual("."u8) && !utf8.SequenceEqual(".."u8);

    /// <summary>True when <paramref name="value"/> is a valid client message id: 1..64 bytes of 0x21..0x7E (no space).</summary>
    public static bool IsValidClientMessageId([NotNullWhen(true)] string? value) => IsPrintable(value, FirstIdChar, ProtocolConstants.MaxClientMessageIdBytes);

    /// <summary>True when <paramref name="utf8"/> is a valid client message id: 1..64 bytes of 0x21..0x7E (no space).</summary>
    public static bool IsValidClientMessageId(ReadOnlySpan<byte> utf8) => IsPrintable(utf8, FirstIdChar, ProtocolConstants.MaxClientMessageIdBytes);

    /// <summary>True when <paramref name="value"/> is a valid content type: 1..64 bytes of printable ASCII, 0x20..0x7E.</summary>
    public static bool IsValidContentType([NotNullWhen(true)] string? value) => IsPrintable(value, Space, ProtocolConstants.MaxContentTypeBytes);

    /// <summary>True when <paramref name="utf8"/> is a valid content type: 1..64 bytes of printable ASCII, 0x20..0x7E.</summary>
    public static bool IsValidContentType(ReadOnlySpan<byte> utf8) => IsPrintable(utf8, Space, ProtocolConstants.MaxContentTypeBytes);

    /// <summary>True when a content of <paramref name="length"/> bytes is allowed: 0..<paramref name="maxContentBytes"/>.</summary>
    public static bool IsValidContentLength(int length, int maxContentBytes) => length >= 0 && length <= maxContentBytes;

    /// <summary>
    /// True when <paramref name="expiresAt"/> is null, or strictly later than <paramref name="nowMs"/> and at most
    /// <paramref name="maxExpiresInMs"/> after it (all Unix milliseconds).
    /// </summary>
    public static bool IsValidExpiresAt(long? expiresAt, long nowMs, long maxExpiresInMs) =>
        expiresAt is not { } e || (e > nowMs && e - nowMs <= maxExpiresInMs);

    /// <summary>
    /// Checks every field of a send. On failure <paramref name="error"/> names the field; the caller maps it to
    /// <see cref="ErrorCode.ValidationFailed"/>. The messages are constant strings, so a rejection allocates nothing.
    /// </summary>
    public static bool TryValidateSend(SendMessage command, long nowMs, int maxContentBytes, long maxExpiresInMs, [NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(command);
        error = !IsValidId(command.TenantId) ? Messages.TenantId
            : !IsValidId(command.ChatId) ? Messages.ChatId
            : !IsValidUserId(command.SenderId) ? Messages.SenderId
            : !IsValidClientMessageId(command.ClientMessageId) ? Messages.ClientMessageId
            : !IsValidContentType(command.ContentType) ? Messages.ContentType
            : !IsValidContentLength(command.Content.Length, maxContentBytes) ? Messages.Content
            : !IsValidExpiresAt(command.ExpiresAt, nowMs, maxExpiresInMs) ? Messages.ExpiresAt
            : null;
        return error is null;
    }

    private static bool IsPrintable([NotNullWhen(true)] string? value, byte first, int maxBytes) =>
        value is not null && value.Length > 0 && value.Length <= maxBytes
        && !value.AsSpan().ContainsAnyExceptInRange((char)first, (char)LastPrintable);

    private static bool IsPrintable(ReadOnlySpan<byte> utf8, byte first, int maxBytes) =>
        utf8.Length > 0 && utf8.Length <= maxBytes && !utf8.ContainsAnyExceptInRange(first, LastPrintable);

    /// <summary>The failure messages, one per field, each naming the field as the wire protocol spells it.</summary>
    public static class Messages
    {
        /// <summary>tenantId is malformed.</summary>
        public const string TenantId = "tenantId must be 1..64 bytes of [A-Za-z0-9_-]";

        /// <summary>chatId is malformed.</summary>
        public const string ChatId = "chatId must be 1..64 bytes of [A-Za-z0-9_-]";

        /// <summary>senderId / userId is malformed.</summary>
        public const string SenderId = "senderId must be 1..128 bytes of printable ASCII without space or '/', and not '.' or '..'";

        /// <summary>A member's user id is malformed.</summary>
        public const string UserId = "userId must be 1..128 bytes of printable ASCII without space or '/', and not '.' or '..'";

        /// <summary>clientMessageId is malformed.</summary>
        public const string ClientMessageId = "clientMessageId must be 1..64 bytes of printable ASCII without space";

        /// <summary>contentType is malformed.</summary>
        public const string ContentType = "contentType must be 1..64 bytes of printable ASCII (space included)";

        /// <summary>content is too long.</summary>
        public const string Content = "content is longer than the configured maximum";

        /// <summary>expiresAt is out of range.</summary>
        public const string ExpiresAt = "expiresAt must be later than now and within the configured maximum lifetime";

        /// <summary>A membership list is empty.</summary>
        public const string Members = "members must name at least one user";
    }
}
