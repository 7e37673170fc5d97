using System.Buffers.Binary;

namespace Gateway.Tools.Common;

/// <summary>
/// The body of a measured message: publisher id (int32), per-publisher counter (int64), intended send time (int64,
/// <see cref="System.Diagnostics.Stopwatch.GetTimestamp"/>), optionally the time it was actually handed to the socket
/// (int64, the timed form), then zero padding up to the configured message size. All little-endian. Stopwatch on Linux
/// reads CLOCK_MONOTONIC, which is system-wide, so a timestamp written by one process can be subtracted in another.
/// </summary>
public static class Payload
{
    /// <summary>4 + 8 + 8 bytes of header; smaller messages cannot carry the measurement.</summary>
    public const int HeaderSize = 20;

    /// <summary>The header plus the actual send time (8 bytes): the timed form.</summary>
    public const int TimedHeaderSize = HeaderSize + 8;

    /// <summary>Writes the header into <paramref name="destination"/> and zeroes the rest.</summary>
    public static void Write(Span<byte> destination, int publisherId, long counter, long intendedTimestamp)
    {
        if (destination.Length < HeaderSize)
        {
            throw new ArgumentException($"A payload needs at least {HeaderSize} bytes.", nameof(destination));
        }

        BinaryPrimitives.WriteInt32LittleEndian(destination, publisherId);
        BinaryPrimitives.WriteInt64LittleEndian(destination[4..], counter);
        BinaryPrimitives.WriteInt64LittleEndian(destination[12..], intendedTimestamp);
        destination[HeaderSize..].Clear();
    }

    /// <summary>Writes the timed form: the header, the actual send time after it, and zeroes the rest.</summary>
    public static void Write(Span<byte> destination, int publisherId, long counter, long intendedTimestamp, long actualTimestamp)
    {
        if (destination.Length < TimedHeaderSize)
        {
            throw new ArgumentException($"A timed payload needs at least {TimedHeaderSize} bytes.", nameof(destination));
        }

        Write(destination, publisherId, counter, intendedTimestamp);
        BinaryPrimitives.WriteInt64LittleEndian(destination[HeaderSize..], actualTimestamp);
    }

    /// <summary>Reads the header; false when the payload is too short to be one of ours.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out int publisherId, out long counter, out long intendedTimestamp)
    {
        if (source.Length < HeaderSize)
        {
            publisherId = 0;
            counter = 0;
            intendedTimestamp = 0;
            return false;
        }

        publisherId = BinaryPrimitives.ReadInt32LittleEndian(source);
        counter = BinaryPrimitives.ReadInt64LittleEndian(source[4..]);
        intendedTimestamp = BinaryPrimitives.ReadInt64LittleEndian(source[12..]);
        return true;
    }

    /// <summary>Reads the timed form; false when the payload is too short for it.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out int publisherId, out long counter, out long intendedTimestamp,
        out long actualTimestamp)
    {
        if (source.Length < TimedHeaderSize)
        {
            publisherId = 0;
            counter = intendedTimestamp = actualTimestamp = 0;
            return false;
        }

        TryRead(source, out publisherId, out counter, out intendedTimestamp);
        actualTimestamp = BinaryPrimitives.ReadInt64LittleEndian(source[HeaderSize..]);
        return true;
    }
}
