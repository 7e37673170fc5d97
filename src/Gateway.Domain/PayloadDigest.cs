using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Gateway.Domain;

/// <summary>
/// A 128-bit digest of what a send asks to store — content type, content and expiry — kept with its idempotency key, so
/// that a retry (same key, same payload) is told apart from a reuse of the key for another payload (a conflict). Stable
/// across processes and versions: it is persisted.
/// </summary>
/// <remarks>SHA-256 truncated to 128 bits: not for secrecy, but any weaker hash in the base library is either randomized
/// per process (<see cref="HashCode"/>) or too short to rule out accidental collisions among a user's keys. Allocation-free;
/// a 32 KiB content costs about 20 µs. Every new send pays it once, when the store writes its idempotency record (on the
/// commit thread, inside the synced batch); a send whose key is already used pays it again for the comparison.</remarks>
public static class PayloadDigest
{
    /// <summary>The digest of a send's payload.</summary>
    /// <param name="contentType">The content type (validated: at most 64 ASCII bytes, but any length works).</param>
    /// <param name="content">The content bytes.</param>
    /// <param name="expiresAt">The expiry, or null.</param>
    public static UInt128 Compute(string contentType, ReadOnlySpan<byte> content, long? expiresAt)
    {
        ArgumentNullException.ThrowIfNull(contentType);

        // SHA-256(length(contentType) ‖ contentType ‖ hasExpiry ‖ expiresAt ‖ SHA-256(content)): every field has a fixed
        // length or a length prefix, so no two payloads share an encoding.
        var typeBytes = Encoding.UTF8.GetByteCount(contentType);
        var length = sizeof(int) + typeBytes + 1 + sizeof(long) + SHA256.HashSizeInBytes;
        Span<byte> buffer = length <= 512 ? stackalloc byte[length] : new byte[length];
        BinaryPrimitives.WriteInt32BigEndian(buffer, typeBytes);
        var at = sizeof(int) + Encoding.UTF8.GetBytes(contentType, buffer[sizeof(int)..]);
        buffer[at++] = expiresAt.HasValue ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteInt64BigEndian(buffer[at..], expiresAt ?? 0);
        at += sizeof(long);
        SHA256.HashData(content, buffer[at..]);

        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(buffer, hash);
        return BinaryPrimitives.ReadUInt128BigEndian(hash);
    }

    /// <summary>The digest of <paramref name="command"/>'s payload.</summary>
    public static UInt128 Of(SendMessage command)
    {
        ArgumentNullException.ThrowIfNull(command);
        return Compute(command.ContentType, command.Content.Span, command.ExpiresAt);
    }

    /// <summary>The digest of <paramref name="message"/>'s payload (equal to that of the send that created it).</summary>
    public static UInt128 Of(ChatMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return Compute(message.ContentType, message.Content.Span, message.ExpiresAt);
    }
}
