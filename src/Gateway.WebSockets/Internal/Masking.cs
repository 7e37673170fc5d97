using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Gateway.WebSockets.Internal;

/// <summary>
/// RFC 6455 §5.3 masking: byte <c>i</c> of the payload is XORed with byte <c>i mod 4</c> of the key. The key is
/// widened to 32/16/8-byte lanes; because every lane width is a multiple of 4, the key's phase does not change inside a
/// span, only at its start (the offset carried over from the previous span).
/// </summary>
internal static class Masking
{
    /// <summary>
    /// XORs <paramref name="data"/> in place with the key, starting at key byte <paramref name="offset"/> (0..3).
    /// Returns the key offset for the byte after <paramref name="data"/>.
    /// </summary>
    public static int Apply(Span<byte> data, uint maskKey, int offset)
    {
        int length = data.Length;
        if (length == 0)
        {
            return offset;
        }

        // Rotate the key so that its first memory byte is key byte `offset`.
        int shift = (offset & 3) * 8;
        uint mask = BitConverter.IsLittleEndian
            ? BitOperations.RotateRight(maskKey, shift)
            : BitOperations.RotateLeft(maskKey, shift);

        ref byte start = ref MemoryMarshal.GetReference(data);
        nuint i = 0;
        nuint n = (nuint)length;

        if (Vector256.IsHardwareAccelerated && n >= (nuint)Vector256<byte>.Count)
        {
            var m = Vector256.Create(mask).AsByte();
            nuint last = n - (nuint)Vector256<byte>.Count;
            for (; i <= last; i += (nuint)Vector256<byte>.Count)
            {
                (Vector256.LoadUnsafe(ref start, i) ^ m).StoreUnsafe(ref start, i);
            }
        }

        if (Vector128.IsHardwareAccelerated && n - i >= (nuint)Vector128<byte>.Count)
        {
            var m = Vector128.Create(mask).AsByte();
            nuint last = n - (nuint)Vector128<byte>.Count;
            for (; i <= last; i += (nuint)Vector128<byte>.Count)
            {
                (Vector128.LoadUnsafe(ref start, i) ^ m).StoreUnsafe(ref start, i);
            }
        }

        if (n - i >= 8)
        {
            ulong m = mask | ((ulong)mask << 32);
            for (; i + 8 <= n; i += 8)
            {
                ref byte p = ref Unsafe.Add(ref start, i);
                Unsafe.WriteUnaligned(ref p, Unsafe.ReadUnaligned<ulong>(ref p) ^ m);
            }
        }

        if (n - i >= 4)
        {
            ref byte p = ref Unsafe.Add(ref start, i);
            Unsafe.WriteUnaligned(ref p, Unsafe.ReadUnaligned<uint>(ref p) ^ mask);
            i += 4;
        }

        // At most 3 bytes left, and i is a multiple of 4, so the tail starts at memory byte 0 of the rotated key.
        for (int k = 0; i < n; i++, k++)
        {
            int byteShift = BitConverter.IsLittleEndian ? k * 8 : (3 - k) * 8;
            Unsafe.Add(ref start, i) ^= (byte)(mask >> byteShift);
        }

        return (offset + length) & 3;
    }

    /// <summary>
    /// Unmasks every segment of <paramref name="payload"/> in place, carrying the key offset across segments.
    /// Writing through a read-only sequence is sound here because the receive loop owns the pipe's buffer until it
    /// calls AdvanceTo, and it only unmasks a whole frame that it consumes in the same step (so no byte is unmasked twice).
    /// </summary>
    public static int Apply(in ReadOnlySequence<byte> payload, uint maskKey, int offset)
    {
        if (payload.IsSingleSegment)
        {
            return Apply(MemoryMarshal.AsMemory(payload.First).Span, maskKey, offset);
        }

        foreach (var segment in payload)
        {
            offset = Apply(MemoryMarshal.AsMemory(segment).Span, maskKey, offset);
        }

        return offset;
    }
}
