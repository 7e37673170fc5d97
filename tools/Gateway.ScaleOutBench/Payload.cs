using System.Buffers.Binary;

namespace Gateway.ScaleOutBench;

/// <summary>
/// Message content of the bench: a counter (int64), the intended send time and the time it was actually handed to the
/// socket (int64 <see cref="System.Diagnostics.Stopwatch"/> timestamps), little-endian, zero-padded to the configured size. Stopwatch reads CLOCK_MONOTONIC on Linux, which is
/// system-wide, so the receiving process can subtract a timestamp written by another.
/// </summary>
internal static class Payload
{
    /// <summary>4 bytes of magic + 8 + 8 + 8: smaller content cannot carry the measurement.</summary>
    public const int HeaderSize = 28;

    // "SOB1": tells the bench's content apart from anything else in a chat.
    private const int Magic = 0x31424F53;

    public static void Write(Span<byte> destination, long counter, long intendedTimestamp, long actualTimestamp)
    {
        BinaryPrimitives.WriteInt32LittleEndian(destination, Magic);
        BinaryPrimitives.WriteInt64LittleEndian(destination[4..], counter);
        BinaryPrimitives.WriteInt64LittleEndian(destination[12..], intendedTimestamp);
        BinaryPrimitives.WriteInt64LittleEndian(destination[20..], actualTimestamp);
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out long counter, out long intendedTimestamp, out long actualTimestamp)
    {
        if (source.Length < HeaderSize || BinaryPrimitives.ReadInt32LittleEndian(source) != Magic)
        {
            counter = intendedTimestamp = actualTimestamp = 0;
            return false;
        }

        counter = BinaryPrimitives.ReadInt64LittleEndian(source[4..]);
        intendedTimestamp = BinaryPrimitives.ReadInt64LittleEndian(source[12..]);
        actualTimestamp = BinaryPrimitives.ReadInt64LittleEndian(source[20..]);
        return true;
    }
}
