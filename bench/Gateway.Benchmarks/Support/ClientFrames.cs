using System.Buffers;
using System.Buffers.Binary;
using Gateway.Protocol;

namespace Gateway.Benchmarks.Support;

/// <summary>What a client puts on the wire: chatgw.v1 payloads wrapped in masked binary WebSocket frames.</summary>
internal static class ClientFrames
{
    /// <summary>An arbitrary non-zero mask key with four distinct bytes, so a wrong key phase would corrupt the payload.</summary>
    public const uint MaskKey = 0x5A3C_96E1;

    /// <summary>A Send frame: [3, requestId, chatId, clientMessageId, "text/plain", content, nil].</summary>
    public static byte[] Send(uint requestId, string chatId, int contentBytes)
    {
        var content = new byte[contentBytes];
        for (int i = 0; i < content.Length; i++)
        {
            content[i] = (byte)('a' + (i % 26));
        }

        var w = new ArrayBufferWriter<byte>();
        // A 36-character client message id: what a UUID-keyed client sends.
        ClientFrameWriter.WriteSend(w, requestId, chatId, "6f1c2d9e-3b7a-4e55-9c10-8a2b4d6e0f13", "text/plain", content, null);
        return w.WrittenSpan.ToArray();
    }

    /// <summary>A Subscribe frame with <paramref name="count"/> cursors whose seqs span 1- to 5-byte MessagePack integers.</summary>
    public static byte[] Subscribe(uint requestId, int count)
    {
        var cursors = new ChatCursor[count];
        for (int i = 0; i < count; i++)
        {
            cursors[i] = new ChatCursor($"chat-{i:D4}", (ulong)i * 40_000_017UL);
        }

        var w = new ArrayBufferWriter<byte>();
        ClientFrameWriter.WriteSubscribe(w, requestId, cursors);
        return w.WrittenSpan.ToArray();
    }

    /// <summary>A Subscribe frame for the given chat from the start of its history.</summary>
    public static byte[] SubscribeFromStart(uint requestId, string chatId)
    {
        var w = new ArrayBufferWriter<byte>();
        ClientFrameWriter.WriteSubscribe(w, requestId, [new ChatCursor(chatId, 0)]);
        return w.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Wraps <paramref name="payload"/> in one masked binary frame with FIN set (RFC 6455 §5.2): 2 bytes, then a 0-, 2-
    /// or 8-byte extended length, then the 4-byte key, then the payload XORed with the key.
    /// </summary>
    public static byte[] Mask(ReadOnlySpan<byte> payload, uint maskKey = MaskKey, byte opcode = 0x2)
    {
        int lengthBytes = payload.Length < 126 ? 0 : payload.Length <= ushort.MaxValue ? 2 : 8;
        var frame = new byte[2 + lengthBytes + 4 + payload.Length];
        frame[0] = (byte)(0x80 | opcode);
        switch (lengthBytes)
        {
            case 0:
                frame[1] = (byte)(0x80 | payload.Length);
                break;
            case 2:
                frame[1] = 0x80 | 126;
                BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(2), (ushort)payload.Length);
                break;
            default:
                frame[1] = 0x80 | 127;
                BinaryPrimitives.WriteUInt64BigEndian(frame.AsSpan(2), (ulong)payload.Length);
                break;
        }

        int keyAt = 2 + lengthBytes;
        // The key goes on the wire in the order the receiver reads it back with a native-endian load.
        BitConverter.TryWriteBytes(frame.AsSpan(keyAt, 4), maskKey);
        var key = frame.AsSpan(keyAt, 4);
        var body = frame.AsSpan(keyAt + 4);
        for (int i = 0; i < payload.Length; i++)
        {
            body[i] = (byte)(payload[i] ^ key[i & 3]);
        }

        return frame;
    }

    /// <summary>Just the header of a masked binary frame announcing <paramref name="payloadLength"/> bytes, followed by <paramref name="trailing"/> payload bytes.</summary>
    public static byte[] Header(long payloadLength, int trailing)
    {
        int lengthBytes = payloadLength < 126 ? 0 : payloadLength <= ushort.MaxValue ? 2 : 8;
        var bytes = new byte[2 + lengthBytes + 4 + trailing];
        bytes[0] = 0x82;
        switch (lengthBytes)
        {
            case 0:
                bytes[1] = (byte)(0x80 | payloadLength);
                break;
            case 2:
                bytes[1] = 0x80 | 126;
                BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(2), (ushort)payloadLength);
                break;
            default:
                bytes[1] = 0x80 | 127;
                BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(2), (ulong)payloadLength);
                break;
        }

        BitConverter.TryWriteBytes(bytes.AsSpan(2 + lengthBytes, 4), MaskKey);
        return bytes;
    }
}
