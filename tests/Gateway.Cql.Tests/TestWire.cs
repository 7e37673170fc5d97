using System.Buffers.Binary;
using System.Net;
using Gateway.Cql.Protocol;

namespace Gateway.Cql.Tests;

/// <summary>Builds response frames and bodies for tests (the body notations come from the client's own writer,
/// whose output the frame-vector tests pin down byte by byte).</summary>
internal static class TestWire
{
    public static byte[] Frame(CqlOpcode opcode, short stream, ReadOnlySpan<byte> body, CqlFrameFlags flags = CqlFrameFlags.None)
    {
        var frame = new byte[9 + body.Length];
        frame[0] = 0x84;
        frame[1] = (byte)flags;
        BinaryPrimitives.WriteInt16BigEndian(frame.AsSpan(2), stream);
        frame[4] = (byte)opcode;
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(5), body.Length);
        body.CopyTo(frame.AsSpan(9));
        return frame;
    }

    public static byte[] Body(Action<CqlFrameBuilder> write)
    {
        using var b = new CqlFrameBuilder(64);
        write(b);
        return b.WrittenSpan.ToArray();
    }

    /// <summary>A frame as the read loop hands it over: the body in a buffer rented from the shared pool.</summary>
    public static CqlResponseFrame Response(CqlOpcode opcode, byte[] body, CqlFrameFlags flags = CqlFrameFlags.None)
    {
        var rented = System.Buffers.ArrayPool<byte>.Shared.Rent(Math.Max(body.Length, 1));
        body.CopyTo(rented, 0);
        return new(opcode, flags, 0, rented, body.Length);
    }

    public static byte[] Void() => Body(b => b.WriteInt(1));

    public static byte[] SetKeyspace(string keyspace) => Body(b =>
    {
        b.WriteInt(3);
        b.WriteString(keyspace);
    });

    public static byte[] Error(CqlErrorCode code, string message, Action<CqlFrameBuilder>? rest = null) => Body(b =>
    {
        b.WriteInt((int)code);
        b.WriteString(message);
        rest?.Invoke(b);
    });

    public static byte[] Supported(IReadOnlyDictionary<string, string[]> options) => Body(b =>
    {
        b.WriteShort((ushort)options.Count);
        foreach (var (key, values) in options)
        {
            b.WriteString(key);
            b.WriteStringList(values);
        }
    });

    /// <summary>A Rows result with a global table spec; cells by CLR type: string text, long bigint, int int, bool
    /// boolean, Guid uuid, IPAddress inet, string[] set&lt;text&gt;, byte[] blob, null null.</summary>
    public static byte[] Rows(string[] names, CqlType[] types, IReadOnlyList<object?[]> rows, byte[]? pagingState = null) => Body(b =>
    {
        b.WriteInt(2);
        b.WriteInt(0x0001 | (pagingState is null ? 0 : 0x0002));
        b.WriteInt(names.Length);
        if (pagingState is not null)
        {
            b.WriteBytes(pagingState);
        }

        b.WriteString("ks");
        b.WriteString("tb");
        for (var i = 0; i < names.Length; i++)
        {
            b.WriteString(names[i]);
            WriteType(b, types[i]);
        }

        b.WriteInt(rows.Count);
        foreach (var row in rows)
        {
            foreach (var cell in row)
            {
                WriteCell(b, cell);
            }
        }
    });

    public static void WriteType(CqlFrameBuilder b, CqlType type)
    {
        b.WriteShort((ushort)type.Code);
        if (type.Elements is { } elements && type.Code is CqlTypeCode.List or CqlTypeCode.Set or CqlTypeCode.Map)
        {
            foreach (var e in elements)
            {
                WriteType(b, e);
            }
        }
    }

    public static void WriteCell(CqlFrameBuilder b, object? cell)
    {
        switch (cell)
        {
            case null:
                b.WriteInt(-1);
                break;
            case string s:
                CqlRequests.WriteValue(b, CqlValue.Text(s), null, "t");
                break;
            case long l:
                CqlRequests.WriteValue(b, CqlValue.BigInt(l), null, "t");
                break;
            case int n:
                CqlRequests.WriteValue(b, CqlValue.Int(n), null, "t");
                break;
            case bool f:
                CqlRequests.WriteValue(b, CqlValue.Boolean(f), null, "t");
                break;
            case Guid g:
                CqlRequests.WriteValue(b, CqlValue.Uuid(g), null, "t");
                break;
            case IPAddress ip:
                b.WriteBytes(ip.GetAddressBytes());
                break;
            case string[] list:
                CqlRequests.WriteValue(b, CqlValue.TextList(list), null, "t");
                break;
            case byte[] blob:
                b.WriteBytes(blob);
                break;
            default:
                throw new ArgumentException($"No cell encoding for {cell.GetType()}");
        }
    }

    public static CqlType T(CqlTypeCode code) => new(code);

    public static CqlType SetOfText => new(CqlTypeCode.Set, Elements: [new CqlType(CqlTypeCode.Varchar)]);
}
