using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;

namespace Gateway.WebSockets;

/// <summary>
/// One complete server frame (header + payload, unmasked) in a pooled, reference-counted buffer, so the same bytes can
/// be enqueued to many connections: serialize once, send many.
/// </summary>
/// <remarks>
/// <para>Life cycle: <see cref="Rent"/> (reference count 1) → write the payload through <see cref="IBufferWriter{T}"/>
/// → <see cref="Seal"/> → enqueue to any number of connections (each successful
/// <see cref="WebSocketConnection.TryEnqueue"/> takes its own reference) → <see cref="Release"/> the renter's reference.
/// Whoever holds a reference owns exactly one <see cref="Release"/>; at zero the byte array goes back to
/// the frame buffer pool and the object back to a small pool, so a frame must not be touched after its
/// holder released it.</para>
/// <para>Writing and sealing are single-threaded (the renter's). After <see cref="Seal"/> the frame is immutable and
/// <see cref="AddRef"/>/<see cref="Release"/>/<see cref="Memory"/> may be used from any thread.</para>
/// </remarks>
public sealed class OutboundFrame : IBufferWriter<byte>
{
    /// <summary>
    /// Room left in front of the payload for the largest server header: 2 fixed bytes + 8 bytes of 64-bit length
    /// (server frames carry no mask key). <see cref="Seal"/> writes the header right-aligned into it, so no copy.
    /// </summary>
    private const int HeaderReserve = 10;

    /// <summary>Frames kept for reuse; beyond this many idle ones, extras are left to the GC (4096 × ~100 B objects).</summary>
    private const int MaxPooled = 4096;

    private static readonly ConcurrentQueue<OutboundFrame> Pool = new();

    /// <summary>
    /// Frame buffers have their own pool. <see cref="ArrayPool{T}.Shared"/> keeps only 32 arrays per size per core,
    /// and frames are rented on the fanout thread but returned on writer pumps: with more than that in flight, every
    /// frame allocated (about 470 B per pipelined delivery in bench/ alloc-check). 2048 per size up to 16 KiB
    /// retains at most 2048 × (0.5 + 1 + 2 + 4 + 8 + 16) KiB ≈ 63 MiB at the very worst; larger frames (long
    /// history pages, big messages) are rare and use the shared pool.
    /// </summary>
    private static readonly ArrayPool<byte> SmallBuffers = ArrayPool<byte>.Create(MaxSmallBuffer, 2048);

    private const int MaxSmallBuffer = 16 * 1024;

    private static byte[] RentBuffer(int size) => size <= MaxSmallBuffer ? SmallBuffers.Rent(size) : ArrayPool<byte>.Shared.Rent(size);

    // SmallBuffers hands out power-of-two lengths up to MaxSmallBuffer; anything longer came from the shared pool.
    private static void ReturnBuffer(byte[] buffer) =>
        (buffer.Length <= MaxSmallBuffer ? SmallBuffers : ArrayPool<byte>.Shared).Return(buffer);
    private static int _pooledCount;

    private byte[] _buffer = [];
    private int _written;
    private int _start;
    private int _refCount;
    private bool _sealed;

    private OutboundFrame()
    {
    }

    /// <summary>The opcode given to <see cref="Seal"/>.</summary>
    public WebSocketOpcode Opcode { get; private set; }

    /// <summary>
    /// An optional <see cref="System.Diagnostics.Stopwatch.GetTimestamp"/> value the producer attaches (0: none), e.g. when
    /// the frame's content became durable. A connection that writes a frame with one calls
    /// <see cref="WebSocketOptions.TimestampedFrameWritten"/>, so the host can measure how long content took to reach the
    /// socket. Set it before the frame is enqueued anywhere; <see cref="Rent"/> clears it.
    /// </summary>
    public long Timestamp { get; set; }

    /// <summary>Whether <see cref="Seal"/> was called.</summary>
    public bool IsSealed => _sealed;

    /// <summary>Payload bytes written so far.</summary>
    public int PayloadLength => _written;

    /// <summary>The sealed frame bytes (header + payload). Valid while the caller holds a reference.</summary>
    public ReadOnlyMemory<byte> Memory
    {
        get
        {
            if (!_sealed)
            {
                ThrowNotSealed();
            }

            return new ReadOnlyMemory<byte>(_buffer, _start, HeaderReserve - _start + _written);
        }
    }

    /// <summary>Length of the sealed frame, header included.</summary>
    public int Length => _sealed ? HeaderReserve - _start + _written : 0;

    /// <summary>Rents a frame with reference count 1 and room for about <paramref name="sizeHint"/> payload bytes.</summary>
    /// <param name="sizeHint">Expected payload size; the buffer grows if more is written.</param>
    public static OutboundFrame Rent(int sizeHint = 256)
    {
        if (Pool.TryDequeue(out var frame))
        {
            Interlocked.Decrement(ref _pooledCount);
        }
        else
        {
            frame = new OutboundFrame();
        }

        frame._buffer = RentBuffer(HeaderReserve + Math.Max(sizeHint, 16));
        frame._written = 0;
        frame._start = HeaderReserve;
        frame._sealed = false;
        frame.Timestamp = 0;
        frame.Opcode = WebSocketOpcode.Binary;
        Volatile.Write(ref frame._refCount, 1);
        return frame;
    }

    /// <summary>Writes the header (FIN set, no mask) in front of the payload; the frame is immutable afterwards.</summary>
    /// <param name="opcode">Binary for data; Ping, Pong or Close for control frames (payload ≤ 125 bytes).</param>
    /// <returns>This frame.</returns>
    public OutboundFrame Seal(WebSocketOpcode opcode = WebSocketOpcode.Binary)
    {
        if (_sealed)
        {
            ThrowSealed();
        }

        if (((byte)opcode & 0x08) != 0 && _written > 125)
        {
            throw new InvalidOperationException("A control frame carries at most 125 payload bytes.");
        }

        Span<byte> reserve = _buffer.AsSpan(0, HeaderReserve);
        byte b0 = (byte)(0x80 | (byte)opcode);
        if (_written < 126)
        {
            _start = HeaderReserve - 2;
            reserve[_start + 1] = (byte)_written;
        }
        else if (_written <= ushort.MaxValue)
        {
            _start = HeaderReserve - 4;
            reserve[_start + 1] = 126;
            BinaryPrimitives.WriteUInt16BigEndian(reserve[(_start + 2)..], (ushort)_written);
        }
        else
        {
            _start = 0;
            reserve[1] = 127;
            BinaryPrimitives.WriteUInt64BigEndian(reserve[2..], (ulong)_written);
        }

        reserve[_start] = b0;
        Opcode = opcode;
        _sealed = true;
        return this;
    }

    /// <summary>Takes one more reference (for another queue). Throws if the frame was already released.</summary>
    public void AddRef()
    {
        if (Interlocked.Increment(ref _refCount) <= 1)
        {
            ThrowReleased();
        }
    }

    /// <summary>Gives back one reference; the last one returns the buffers to their pools.</summary>
    public void Release()
    {
        int count = Interlocked.Decrement(ref _refCount);
        if (count > 0)
        {
            return;
        }

        if (count < 0)
        {
            ThrowReleased();
        }

        byte[] buffer = _buffer;
        _buffer = [];
        _written = 0;
        _sealed = false;
        ReturnBuffer(buffer);
        if (Interlocked.Increment(ref _pooledCount) <= MaxPooled)
        {
            Pool.Enqueue(this);
        }
        else
        {
            Interlocked.Decrement(ref _pooledCount);
        }
    }

    /// <inheritdoc />
    public void Advance(int count)
    {
        if (_sealed)
        {
            ThrowSealed();
        }

        if ((uint)count > (uint)(_buffer.Length - HeaderReserve - _written))
        {
            throw new ArgumentOutOfRangeException(nameof(count));
        }

        _written += count;
    }

    /// <inheritdoc />
    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        EnsureCapacity(sizeHint);
        return _buffer.AsMemory(HeaderReserve + _written);
    }

    /// <inheritdoc />
    public Span<byte> GetSpan(int sizeHint = 0)
    {
        EnsureCapacity(sizeHint);
        return _buffer.AsSpan(HeaderReserve + _written);
    }

    internal int RefCount => Volatile.Read(ref _refCount);

    /// <summary>
    /// Replaces the payload of a sealed control frame and seals it again with the same opcode. Only for a frame whose
    /// single holder is the caller and which nobody is reading (a connection's queued pong, answering a newer ping):
    /// it breaks the immutability every shared frame relies on. No allocation when the buffer was rented for
    /// <see cref="Internal.FrameHeader.MaxControlPayload"/> bytes.
    /// </summary>
    internal void ReplaceControlPayload(in ReadOnlySequence<byte> payload)
    {
        var opcode = Opcode;
        _sealed = false;
        _written = 0;
        _start = HeaderReserve;
        int length = (int)payload.Length;
        payload.CopyTo(GetSpan(length));
        Advance(length);
        Seal(opcode);
    }

    private void EnsureCapacity(int sizeHint)
    {
        if (_sealed)
        {
            ThrowSealed();
        }

        if (_refCount <= 0)
        {
            ThrowReleased();
        }

        int needed = Math.Max(sizeHint, 1);
        int free = _buffer.Length - HeaderReserve - _written;
        if (free >= needed)
        {
            return;
        }

        // Grow at least 2x so a payload written in small pieces costs O(log n) copies.
        int newSize = (int)Math.Min(Array.MaxLength, Math.Max((long)_buffer.Length * 2, (long)HeaderReserve + _written + needed));
        byte[] bigger = RentBuffer(newSize);
        _buffer.AsSpan(0, HeaderReserve + _written).CopyTo(bigger);
        ReturnBuffer(_buffer);
        _buffer = bigger;
    }

    [DoesNotReturn]
    private static void ThrowSealed() => throw new InvalidOperationException("The frame is sealed; it can no longer be written.");

    [DoesNotReturn]
    private static void ThrowNotSealed() => throw new InvalidOperationException("The frame is not sealed yet.");

    [DoesNotReturn]
    private static void ThrowReleased() => throw new InvalidOperationException("The frame was already released.");
}
