using System.Buffers;
using System.IO.Pipelines;

namespace Gateway.Benchmarks.Support;

/// <summary>
/// Plays the socket on the outbound side of one connection: reads everything the writer pump flushes and counts the
/// server frames by chatgw.v1 type, so a benchmark can check that every subscriber really received every message.
/// </summary>
/// <remarks>
/// Only the frame headers and the first two payload bytes are looked at: a server frame is unmasked, its payload is a
/// MessagePack fixarray (one byte) followed by the type tag as a positive fixint (one byte, tags 32..63).
/// </remarks>
internal sealed class ServerFrameDrain
{
    private const byte MessageTag = 37;
    private const byte CaughtUpTag = 38;
    private const byte CloseOpcode = 0x8;

    private readonly PipeReader _reader;
    private readonly Action<long> _onMessages;
    private long _messages;
    private int _caughtUp;
    private int _closeFrames;

    public ServerFrameDrain(PipeReader reader, Action<long> onMessages)
    {
        _reader = reader;
        _onMessages = onMessages;
        Completion = Task.Run(RunAsync);
    }

    /// <summary>Completes when the connection completed its output pipe.</summary>
    public Task Completion { get; }

    /// <summary>Message frames seen.</summary>
    public long Messages => Volatile.Read(ref _messages);

    /// <summary>CaughtUp frames seen: 1 once the subscription went live.</summary>
    public int CaughtUp => Volatile.Read(ref _caughtUp);

    /// <summary>Close frames seen (0 while the connection is healthy; a slow-consumer close would show here).</summary>
    public int CloseFrames => Volatile.Read(ref _closeFrames);

    private async Task RunAsync()
    {
        while (true)
        {
            var result = await _reader.ReadAsync().ConfigureAwait(false);
            var buffer = result.Buffer;
            var consumed = Count(buffer, out long messages);
            if (messages > 0)
            {
                Volatile.Write(ref _messages, _messages + messages);
                _onMessages(messages);
            }

            // Consumed up to the last whole frame, examined everything: a partial frame waits for more bytes.
            _reader.AdvanceTo(consumed, buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                await _reader.CompleteAsync().ConfigureAwait(false);
                return;
            }
        }
    }

    private SequencePosition Count(in ReadOnlySequence<byte> buffer, out long messages)
    {
        messages = 0;
        var reader = new SequenceReader<byte>(buffer);
        Span<byte> head = stackalloc byte[12]; // 2 fixed + 8 extended length + 2 payload bytes (fixarray, tag)
        while (true)
        {
            var start = reader.Position;
            int available = (int)Math.Min(reader.Remaining, head.Length);
            if (available < 2 || !reader.TryCopyTo(head[..available]))
            {
                return start;
            }

            int length7 = head[1] & 0x7F;
            int headerLength = length7 < 126 ? 2 : length7 == 126 ? 4 : 10;
            if (available < headerLength)
            {
                return start;
            }

            long payloadLength = length7 < 126 ? length7
                : length7 == 126 ? (head[2] << 8) | head[3]
                : (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(head[2..]);
            if (reader.Remaining < headerLength + payloadLength)
            {
                return start;
            }

            int opcode = head[0] & 0x0F;
            if (opcode == CloseOpcode)
            {
                Interlocked.Increment(ref _closeFrames);
            }
            else if (payloadLength >= 2 && available >= headerLength + 2)
            {
                switch (head[headerLength + 1])
                {
                    case MessageTag:
                        messages++;
                        break;
                    case CaughtUpTag:
                        Interlocked.Increment(ref _caughtUp);
                        break;
                }
            }

            reader.Advance(headerLength + payloadLength);
        }
    }
}
