using System.Buffers;
using Gateway.Domain;
using Gateway.Domain.Ports;
using Gateway.Protocol;
using MessagePack;

namespace Gateway.Nats;

/// <summary>Encodings of the gateway ↔ writer requests and replies (see PROTOCOL.md's companion, README "Distributed mode").</summary>
internal static class RpcCodec
{
    public static byte[] Encode<TState>(TState state, WriteAction<TState> write, int sizeHint = 256)
    {
        var buffer = new ArrayBufferWriter<byte>(sizeHint);
        var w = new MessagePackWriter(buffer);
        write(ref w, state);
        w.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    public delegate void WriteAction<TState>(ref MessagePackWriter w, TState state);

    public static byte[] EncodeSend(SendMessage c) => Encode(c, static (ref MessagePackWriter w, SendMessage c) =>
    {
        w.WriteArrayHeader(8);
        w.Write(c.TenantId);
        w.Write(c.ChatId);
        w.Write(c.SenderId);
        w.Write(c.ClientMessageId);
        w.Write(c.ContentType);
        w.Write(c.Content.Span);
        WireCodec.WriteNullable(ref w, c.ExpiresAt);
        WireCodec.WriteNullable(ref w, c.TraceId);
    }, 256 + c.Content.Length);

    /// <summary>Reads what <see cref="EncodeSend"/> wrote. The content is a slice of <paramref name="bytes"/>, not a copy:
    /// the send owns it from here (<see cref="IWriteService.SendAsync"/>), so the caller hands over a request that nothing
    /// reuses (the writer's requests are arrays NATS allocated for each message).</summary>
    public static SendMessage DecodeSend(ReadOnlySequence<byte> bytes)
    {
        var r = new MessagePackReader(bytes);
        var n = r.ReadArrayHeader();
        var c = new SendMessage(r.ReadString()!, r.ReadString()!, r.ReadString()!, r.ReadString()!, r.ReadString()!,
            r.ReadBytes() is { } b ? WireCodec.Contiguous(b) : ReadOnlyMemory<byte>.Empty, r.TryReadNil() ? null : r.ReadInt64(), WireCodec.ReadNullableString(ref r));
        SkipRest(ref r, n, 8);
        return c;
    }

    public static byte[] EncodeSendResult(SendResult s) => Encode(s, static (ref MessagePackWriter w, SendResult s) =>
    {
        w.WriteArrayHeader(6);
        w.Write((int)s.Error);
        WireCodec.WriteNullable(ref w, s.ErrorMessage);
        w.Write(s.Seq);
        WireCodec.WriteNullable(ref w, s.MessageId);
        w.Write(s.SentAt);
        w.Write(s.Duplicate);
    });

    public static SendResult DecodeSendResult(ReadOnlySequence<byte> bytes)
    {
        var r = new MessagePackReader(bytes);
        var n = r.ReadArrayHeader();
        var s = new SendResult(WireCodec.ReadError(ref r), WireCodec.ReadNullableString(ref r), r.ReadUInt64(), WireCodec.ReadNullableString(ref r), r.ReadInt64(), r.ReadBoolean());
        SkipRest(ref r, n, 6);
        return s;
    }

    public static byte[] EncodeAdmin(AdminOp op, string tenantId, string chatId, IReadOnlyCollection<string> users) =>
        Encode((op, tenantId, chatId, users), static (ref MessagePackWriter w, (AdminOp Op, string T, string C, IReadOnlyCollection<string> U) a) =>
        {
            w.WriteArrayHeader(4);
            w.Write((int)a.Op);
            w.Write(a.T);
            w.Write(a.C);
            WireCodec.WriteStrings(ref w, a.U);
        });

    public static byte[] EncodeAdminResult(AdminResult a) => Encode(a, static (ref MessagePackWriter w, AdminResult a) =>
    {
        w.WriteArrayHeader(2);
        w.Write((int)a.Error);
        WireCodec.WriteNullable(ref w, a.ErrorMessage);
    });

    public static AdminResult DecodeAdminResult(ReadOnlySequence<byte> bytes)
    {
        var r = new MessagePackReader(bytes);
        var n = r.ReadArrayHeader();
        var a = new AdminResult(WireCodec.ReadError(ref r), WireCodec.ReadNullableString(ref r));
        SkipRest(ref r, n, 2);
        return a;
    }

    public static byte[] EncodeRead(ReadKey k) => Encode(k, static (ref MessagePackWriter w, ReadKey k) =>
    {
        w.WriteArrayHeader(6);
        w.Write((int)k.Op);
        w.Write(k.TenantId);
        w.Write(k.ChatId);
        w.Write(k.Seq);
        WireCodec.WriteNullable(ref w, k.UserId);
        w.Write(k.Limit);
    });

    public static ReadKey DecodeRead(ReadOnlySequence<byte> bytes)
    {
        var r = new MessagePackReader(bytes);
        var n = r.ReadArrayHeader();
        var k = new ReadKey((ReadOp)r.ReadInt32(), r.ReadString()!, r.ReadString()!, r.ReadUInt64(), WireCodec.ReadNullableString(ref r), r.ReadInt32());
        SkipRest(ref r, n, 6);
        return k;
    }

    /// <summary>A read reply: [error, message, head, messages[] | bool | users[]].</summary>
    public static byte[] EncodeReadReply(ulong head, IReadOnlyList<ChatMessage>? messages, bool? flag, IReadOnlyList<string>? users) =>
        Encode((head, messages, flag, users), static (ref MessagePackWriter w, (ulong Head, IReadOnlyList<ChatMessage>? M, bool? F, IReadOnlyList<string>? U) x) =>
        {
            w.WriteArrayHeader(4);
            w.Write(0);
            w.WriteNil();
            w.Write(x.Head);
            if (x.M is { } messages)
            {
                w.WriteArrayHeader(messages.Count);
                foreach (var m in messages)
                {
                    WireCodec.WriteMessageBody(ref w, m);
                }
            }
            else if (x.F is { } flag)
            {
                w.Write(flag);
            }
            else if (x.U is { } users)
            {
                WireCodec.WriteStrings(ref w, users);
            }
            else
            {
                w.WriteNil();
            }
        }, 256 + (messages?.Sum(m => m.Content.Length + 128) ?? 0));

    public static byte[] EncodeError(ErrorCode code, string message) => Encode((code, message), static (ref MessagePackWriter w, (ErrorCode C, string M) e) =>
    {
        w.WriteArrayHeader(2);
        w.Write((int)e.C);
        w.Write(e.M);
    });

    /// <summary>True when a reply (of any request kind: every reply starts with its error code) says Unavailable.</summary>
    public static bool IsUnavailable(byte[]? reply)
    {
        if (reply is null || reply.Length == 0)
        {
            return false;
        }

        try
        {
            var r = new MessagePackReader(reply);
            return r.ReadArrayHeader() > 0 && r.NextMessagePackType == MessagePackType.Integer && r.ReadInt32() == (int)ErrorCode.Unavailable;
        }
        catch (MessagePackSerializationException)
        {
            return false;
        }
    }

    /// <summary>Decodes a read reply's header; throws <see cref="RemoteException"/> for an error reply.</summary>
    public static MessagePackReader OpenReadReply(ReadOnlySequence<byte> bytes, out ulong head)
    {
        var r = new MessagePackReader(bytes);
        r.ReadArrayHeader();
        var code = WireCodec.ReadError(ref r);
        var message = WireCodec.ReadNullableString(ref r);
        if (code != ErrorCode.None)
        {
            throw new RemoteException(code, message ?? code.ToString());
        }

        head = r.ReadUInt64();
        return r;
    }

    private static void SkipRest(ref MessagePackReader r, int n, int known)
    {
        for (var i = known; i < n; i++)
        {
            r.Skip();
        }
    }
}
