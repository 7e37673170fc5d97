using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Gateway.Cql.Protocol;

/// <summary>
/// Writes request frames (header of spec §2, notations of §3) into one pooled, growable buffer that can be reused for
/// the next frame, so encoding a request allocates nothing once the buffer has grown to the working size.
/// </summary>
internal sealed class CqlFrameBuilder : IDisposable
{
    private byte[] _buffer;
    private int _length;
    private int _frameStart = -1;

    public CqlFrameBuilder(int capacity = 512) => _buffer = ArrayPool<byte>.Shared.Rent(capacity);

    public int Length => _length;

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _length);

    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _length);

    public void Reset()
    {
        _length = 0;
        _frameStart = -1;
    }

    /// <summary>Starts a request frame; the length is filled in by <see cref="EndFrame"/>.</summary>
    public void BeginFrame(CqlOpcode opcode, CqlFrameFlags flags = CqlFrameFlags.None, short stream = 0)
    {
        _frameStart = _length;
        var header = Grow(CqlFrame.HeaderLength);
        header[0] = CqlFrame.RequestVersion;
        header[1] = (byte)flags;
        BinaryPrimitives.WriteInt16BigEndian(header[2..], stream);
        header[4] = (byte)opcode;
        BinaryPrimitives.WriteInt32BigEndian(header[5..], 0);
    }

    public void EndFrame()
    {
        if (_frameStart < 0)
        {
            throw new InvalidOperationException("No frame was begun");
        }

        BinaryPrimitives.WriteInt32BigEndian(_buffer.AsSpan(_frameStart + 5, 4), _length - _frameStart - CqlFrame.HeaderLength);
        _frameStart = -1;
    }

    public void WriteByte(byte value) => Grow(1)[0] = value;

    public void WriteShort(ushort value) => BinaryPrimitives.WriteUInt16BigEndian(Grow(2), value);

    public void WriteInt(int value) => BinaryPrimitives.WriteInt32BigEndian(Grow(4), value);

    public void WriteLong(long value) => BinaryPrimitives.WriteInt64BigEndian(Grow(8), value);

    public void WriteConsistency(CqlConsistency value) => WriteShort((ushort)value);

    public void WriteUuid(Guid value) => value.TryWriteBytes(Grow(16), bigEndian: true, out _);

    /// <summary>[string]: a [short] length, then UTF-8.</summary>
    public void WriteString(string value)
    {
        var count = Encoding.UTF8.GetByteCount(value);
        if (count > ushort.MaxValue)
        {
            throw new ArgumentException($"A [string] holds at most {ushort.MaxValue} bytes; this one has {count}", nameof(value));
        }

        WriteShort((ushort)count);
        Encoding.UTF8.GetBytes(value, Grow(count));
    }

    /// <summary>[long string]: an [int] length, then UTF-8.</summary>
    public void WriteLongString(string value)
    {
        var count = Encoding.UTF8.GetByteCount(value);
        WriteInt(count);
        Encoding.UTF8.GetBytes(value, Grow(count));
    }

    /// <summary>[bytes] (and a [value] that is set): an [int] length, then the bytes.</summary>
    public void WriteBytes(ReadOnlySpan<byte> value)
    {
        WriteInt(value.Length);
        value.CopyTo(Grow(value.Length));
    }

    /// <summary>[short bytes].</summary>
    public void WriteShortBytes(ReadOnlySpan<byte> value)
    {
        if (value.Length > ushort.MaxValue)
        {
            throw new ArgumentException("[short bytes] hold at most 65535 bytes", nameof(value));
        }

        WriteShort((ushort)value.Length);
        value.CopyTo(Grow(value.Length));
    }

    public void WriteRaw(ReadOnlySpan<byte> value) => value.CopyTo(Grow(value.Length));

    public void WriteStringList(IReadOnlyList<string> values)
    {
        WriteShort(checked((ushort)values.Count));
        for (var i = 0; i < values.Count; i++)
        {
            WriteString(values[i]);
        }
    }

    public void WriteStringMap(IReadOnlyList<KeyValuePair<string, string>> entries)
    {
        WriteShort(checked((ushort)entries.Count));
        for (var i = 0; i < entries.Count; i++)
        {
            WriteString(entries[i].Key);
            WriteString(entries[i].Value);
        }
    }

    /// <summary>Reserves <paramref name="count"/> bytes at the end and returns them for the caller to fill.</summary>
    public Span<byte> Grow(int count)
    {
        if (_length + count > _buffer.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _length + count));
            _buffer.AsSpan(0, _length).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }

        var span = _buffer.AsSpan(_length, count);
        _length += count;
        return span;
    }

    /// <summary>Overwrites an [int] already written at <paramref name="offset"/> (a length known only afterwards).</summary>
    public void PatchInt(int offset, int value) => BinaryPrimitives.WriteInt32BigEndian(_buffer.AsSpan(offset, 4), value);

    public void Dispose()
    {
        var buffer = _buffer;
        _buffer = [];
        _length = 0;
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
