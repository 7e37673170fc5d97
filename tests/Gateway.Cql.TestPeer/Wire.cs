using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace Gateway.Cql.TestPeer;

/// <summary>Thrown when a frame body does not follow the protocol; the peer answers it with a ProtocolError.</summary>
internal sealed class ProtocolViolationException(string message) : Exception(message);

/// <summary>Reads the protocol's notations ([int], [string], [bytes], ...) from one frame body, bounds-checked.</summary>
internal sealed class WireReader(byte[] buffer)
{
    private int _position;

    public bool AtEnd => _position >= buffer.Length;

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count < 0 || count > buffer.Length - _position)
        {
            throw new ProtocolViolationException(
                $"frame body too short: wanted {count} bytes at offset {_position} of {buffer.Length}");
        }

        var span = buffer.AsSpan(_position, count);
        _position += count;
        return span;
    }

    public byte ReadByte() => Take(1)[0];

    public ushort ReadShort() => BinaryPrimitives.ReadUInt16BigEndian(Take(2));

    public int ReadInt() => BinaryPrimitives.ReadInt32BigEndian(Take(4));

    public long ReadLong() => BinaryPrimitives.ReadInt64BigEndian(Take(8));

    public string ReadString() => Utf8(Take(ReadShort()));

    public string ReadLongString()
    {
        var n = ReadInt();
        if (n < 0)
        {
            throw new ProtocolViolationException("negative [long string] length");
        }

        return Utf8(Take(n));
    }

    public byte[] ReadShortBytes() => Take(ReadShort()).ToArray();

    public byte[]? ReadBytes()
    {
        var n = ReadInt();
        return n < 0 ? null : Take(n).ToArray();
    }

    /// <summary>A [value]: bytes, null (-1) or not set (-2, returned as <see cref="BoundValue.Unset"/>).</summary>
    public BoundValue ReadValue()
    {
        var n = ReadInt();
        return n switch
        {
            -1 => BoundValue.Null,
            -2 => BoundValue.Unset,
            < -2 => throw new ProtocolViolationException($"invalid [value] length {n}"),
            _ => new BoundValue(Take(n).ToArray(), false),
        };
    }

    public Dictionary<string, string> ReadStringMap()
    {
        var n = ReadShort();
        var map = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < n; i++)
        {
            var key = ReadString();
            map[key] = ReadString();
        }

        return map;
    }

    public List<string> ReadStringList()
    {
        var n = ReadShort();
        var list = new List<string>(n);
        for (var i = 0; i < n; i++)
        {
            list.Add(ReadString());
        }

        return list;
    }

    public void SkipBytesMap()
    {
        var n = ReadShort();
        for (var i = 0; i < n; i++)
        {
            ReadString();
            ReadBytes();
        }
    }

    private static string Utf8(ReadOnlySpan<byte> bytes)
    {
        try
        {
            return new UTF8Encoding(false, true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw new ProtocolViolationException("string is not valid UTF-8");
        }
    }
}

/// <summary>A bound value: bytes, null, or "not set" (leave the column alone).</summary>
internal readonly record struct BoundValue(byte[]? Bytes, bool IsUnset)
{
    public static BoundValue Null => new(null, false);

    public static BoundValue Unset => new(null, true);

    public bool IsNull => Bytes is null && !IsUnset;
}

/// <summary>Writes the protocol's notations into a growable buffer.</summary>
internal sealed class WireWriter
{
    private byte[] _buffer = new byte[256];

    public int Length { get; private set; }

    private Span<byte> Grow(int count)
    {
        if (Length + count > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, Length + count));
        }

        var span = _buffer.AsSpan(Length, count);
        Length += count;
        return span;
    }

    public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, Length);

    public byte[] ToArray() => Written.ToArray();

    public void WriteByte(byte value) => Grow(1)[0] = value;

    public void WriteShort(ushort value) => BinaryPrimitives.WriteUInt16BigEndian(Grow(2), value);

    public void WriteInt(int value) => BinaryPrimitives.WriteInt32BigEndian(Grow(4), value);

    public void WriteLong(long value) => BinaryPrimitives.WriteInt64BigEndian(Grow(8), value);

    public void WriteRaw(ReadOnlySpan<byte> bytes) => bytes.CopyTo(Grow(bytes.Length));

    public void WriteString(string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        WriteShort((ushort)bytes.Length);
        WriteRaw(bytes);
    }

    public void WriteLongString(string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        WriteInt(bytes.Length);
        WriteRaw(bytes);
    }

    public void WriteBytes(byte[]? value)
    {
        if (value is null)
        {
            WriteInt(-1);
            return;
        }

        WriteInt(value.Length);
        WriteRaw(value);
    }

    public void WriteShortBytes(byte[] value)
    {
        WriteShort((ushort)value.Length);
        WriteRaw(value);
    }

    public void WriteStringList(IReadOnlyList<string> values)
    {
        WriteShort((ushort)values.Count);
        foreach (var v in values)
        {
            WriteString(v);
        }
    }

    public void WriteStringMultimap(IReadOnlyList<KeyValuePair<string, string[]>> map)
    {
        WriteShort((ushort)map.Count);
        foreach (var (key, values) in map)
        {
            WriteString(key);
            WriteStringList(values);
        }
    }

    public void WriteInet(IPAddress address, int port)
    {
        var bytes = address.GetAddressBytes();
        WriteByte((byte)bytes.Length);
        WriteRaw(bytes);
        WriteInt(port);
    }
}
