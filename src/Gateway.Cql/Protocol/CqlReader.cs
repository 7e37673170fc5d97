using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace Gateway.Cql.Protocol;

/// <summary>Reads the notations of spec §3 from a response body, front to back.</summary>
internal ref struct CqlReader(ReadOnlySpan<byte> span)
{
    private readonly ReadOnlySpan<byte> _span = span;

    public int Position { get; set; }

    public readonly int Remaining => _span.Length - Position;

    public byte ReadByte() => Take(1)[0];

    public ushort ReadShort() => BinaryPrimitives.ReadUInt16BigEndian(Take(2));

    public int ReadInt() => BinaryPrimitives.ReadInt32BigEndian(Take(4));

    public long ReadLong() => BinaryPrimitives.ReadInt64BigEndian(Take(8));

    public CqlConsistency ReadConsistency() => (CqlConsistency)ReadShort();

    public Guid ReadUuid() => new(Take(16), bigEndian: true);

    public string ReadString() => Encoding.UTF8.GetString(Take(ReadShort()));

    public string ReadLongString() => Encoding.UTF8.GetString(Take(ReadInt()));

    /// <summary>[bytes]; false for null (a negative length).</summary>
    public bool ReadBytes(out ReadOnlySpan<byte> value)
    {
        var length = ReadInt();
        if (length < 0)
        {
            value = [];
            return false;
        }

        value = Take(length);
        return true;
    }

    public ReadOnlySpan<byte> ReadShortBytes() => Take(ReadShort());

    public IReadOnlyList<string> ReadStringList()
    {
        var n = ReadShort();
        if (n == 0)
        {
            return [];
        }

        var list = new string[n];
        for (var i = 0; i < n; i++)
        {
            list[i] = ReadString();
        }

        return list;
    }

    public Dictionary<string, IReadOnlyList<string>> ReadStringMultimap()
    {
        var n = ReadShort();
        var map = new Dictionary<string, IReadOnlyList<string>>(n, StringComparer.Ordinal);
        for (var i = 0; i < n; i++)
        {
            var key = ReadString();
            map[key] = ReadStringList();
        }

        return map;
    }

    public Dictionary<string, byte[]> ReadBytesMap()
    {
        var n = ReadShort();
        var map = new Dictionary<string, byte[]>(n, StringComparer.Ordinal);
        for (var i = 0; i < n; i++)
        {
            var key = ReadString();
            map[key] = ReadBytes(out var value) ? value.ToArray() : [];
        }

        return map;
    }

    /// <summary>[inet]: a size byte, the address, an [int] port.</summary>
    public IPEndPoint ReadInet()
    {
        var size = ReadByte();
        if (size is not (4 or 16))
        {
            throw new CqlException($"An [inet] address is 4 or 16 bytes, not {size}");
        }

        var address = new IPAddress(Take(size));
        var port = ReadInt();
        return new IPEndPoint(address, port);
    }

    /// <summary>An [option] naming a column type, read recursively for collections, UDTs and tuples (spec §4.2.5.2).</summary>
    public CqlType ReadType()
    {
        var code = (CqlTypeCode)ReadShort();
        switch (code)
        {
            case CqlTypeCode.Custom:
                return new CqlType(code, CustomClass: ReadString());
            case CqlTypeCode.List:
            case CqlTypeCode.Set:
                return new CqlType(code, Elements: [ReadType()]);
            case CqlTypeCode.Map:
                var key = ReadType();
                return new CqlType(code, Elements: [key, ReadType()]);
            case CqlTypeCode.Udt:
                var keyspace = ReadString();
                var name = ReadString();
                var fieldCount = ReadShort();
                var names = new string[fieldCount];
                var types = new CqlType[fieldCount];
                for (var i = 0; i < fieldCount; i++)
                {
                    names[i] = ReadString();
                    types[i] = ReadType();
                }

                return new CqlType(code, Elements: types, FieldNames: names, UdtKeyspace: keyspace, UdtName: name);
            case CqlTypeCode.Tuple:
                var count = ReadShort();
                var components = new CqlType[count];
                for (var i = 0; i < count; i++)
                {
                    components[i] = ReadType();
                }

                return new CqlType(code, Elements: components);
            default:
                return CqlTypes.Of(code);
        }
    }

    public ReadOnlySpan<byte> Take(int count)
    {
        if (count < 0 || count > Remaining)
        {
            throw new CqlException($"Malformed frame: {count} bytes wanted at offset {Position}, {Remaining} left");
        }

        var slice = _span.Slice(Position, count);
        Position += count;
        return slice;
    }
}

/// <summary>One shared instance per native type, so that metadata of every page does not allocate its types again.</summary>
internal static class CqlTypes
{
    private static readonly CqlType[] Native = CreateNative();

    public static CqlType Of(CqlTypeCode code) => (int)code < Native.Length && Native[(int)code] is { } t ? t : new CqlType(code);

    private static CqlType[] CreateNative()
    {
        var all = new CqlType[0x15];
        foreach (var code in Enum.GetValues<CqlTypeCode>())
        {
            if ((int)code is > 0 and < 0x15)
            {
                all[(int)code] = new CqlType(code);
            }
        }

        return all;
    }
}
