using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Gateway.Protocol;
using Gateway.WebSockets;

namespace Gateway.Fuzz;

/// <summary>
/// Target <c>receive-path</c>: a real <see cref="WebSocketConnection"/> over in-memory pipes. A fixed upgrade request
/// goes through <c>WebSocketHandshake.AcceptAsync</c>, the fuzz input follows it as the raw bytes of the
/// connection, and a handler runs <see cref="ClientFrameReader"/> on every message and answers the way the gateway
/// does (an Error frame, or close 1007 on a malformed payload).
/// </summary>
/// <remarks>
/// Contract: RunAsync finishes (within a few seconds, the input being complete) and never faults, except with the
/// handler's own exception, which the handler throws on purpose for payloads starting with 0xc1 (a byte MessagePack
/// never uses) to exercise the documented fault path; every message handed over fits MaxMessageBytes; when RunAsync
/// ends nothing is left queued; what the server wrote is a sequence of whole, unmasked, RSV-free server frames with at
/// most one close frame, last, whose code is one that may go on the wire; the recorded CloseStatus is such a code,
/// 1005, or none; and a handler fault closed with 1011.
/// </remarks>
public static class ReceivePathTarget
{
    public const string Name = "receive-path";

    /// <summary>Small, so the fuzzer reaches the 1009 path (and fragment reassembly growth) with short inputs.</summary>
    private const int MaxMessageBytes = 4096;

    private static readonly byte[] Upgrade =
        "GET /v1/ws HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chatgw.v1\r\n\r\n"u8.ToArray();

    public static void Run(ReadOnlySpan<byte> data)
    {
        // Never pause: the whole exchange is buffered in memory, so no loop waits on the other side's reading.
        var pipeOptions = new PipeOptions(pauseWriterThreshold: 0, useSynchronizationContext: false);
        var input = new Pipe(pipeOptions);
        var output = new Pipe(pipeOptions);
        input.Writer.Write(Upgrade);
        input.Writer.Write(data);
        input.Writer.Complete();
        var transport = new Transport(input.Reader, output.Writer);
        var options = new WebSocketOptions
        {
            MaxMessageBytes = MaxMessageBytes,
            CloseTimeout = TimeSpan.FromSeconds(2),
            KeepAliveInterval = TimeSpan.Zero,
        };

        var handshake = WebSocketHandshake.AcceptAsync(transport, options, _ => HandshakeDecision.Accept(ProtocolConstants.SubProtocol),
            CancellationToken.None).AsTask();
        ContractViolationException.Check(Finishes(handshake, TimeSpan.FromSeconds(5)) && handshake.Result.Accepted,
            "the fixed upgrade was not accepted");

        // The 101 response is not part of the frame stream: drop it before the connection writes.
        ContractViolationException.Check(output.Reader.TryRead(out var response), "no 101 response");
        output.Reader.AdvanceTo(response.Buffer.End);

        var connection = new WebSocketConnection(transport, options);
        var handler = new Handler();
        var run = connection.RunAsync(handler, CancellationToken.None);

        // The input is complete and the writer never pauses; the close timer (2 s) bounds the rest.
        ContractViolationException.Check(Finishes(run, TimeSpan.FromSeconds(8)), "RunAsync did not finish");
        if (run.IsFaulted)
        {
            var error = run.Exception!.InnerException;
            ContractViolationException.Check(error is HandlerFault && handler.Threw, $"RunAsync faulted: {error}");
            ContractViolationException.Check(connection.CloseStatus == 1011, $"a handler fault closed with {connection.CloseStatus}");
        }
        else
        {
            ContractViolationException.Check(!handler.Threw, "the handler's fault was swallowed");
        }

        ContractViolationException.Check(connection.FramesQueued == 0 && connection.BytesQueued == 0,
            $"{connection.FramesQueued} frames / {connection.BytesQueued} bytes left queued");
        ContractViolationException.Check(connection.CloseStatus is null or 1005 || IsValidOnWire(connection.CloseStatus.Value),
            $"CloseStatus {connection.CloseStatus}");
        ContractViolationException.Check(handler.Error is null, handler.Error ?? string.Empty);
        ushort? expected = ExpectedCloseStatus(data);
        ContractViolationException.Check(connection.CloseStatus == expected,
            $"CloseStatus {connection.CloseStatus?.ToString() ?? "none"}, RFC 6455 says {expected?.ToString() ?? "none"}");

        ContractViolationException.Check(output.Reader.TryRead(out var written), "output pipe not completed");
        CheckServerFrames(written.Buffer);
        output.Reader.AdvanceTo(written.Buffer.End);
        output.Reader.Complete();
    }

    private static void CheckServerFrames(ReadOnlySequence<byte> bytes)
    {
        var reader = new SequenceReader<byte>(bytes);
        bool sawClose = false;
        while (!reader.End)
        {
            ContractViolationException.Check(!sawClose, "a frame after the close frame");
            if (!reader.TryRead(out byte b0) || !reader.TryRead(out byte b1))
            {
                ContractViolationException.Throw("cut frame header");
                return;
            }

            ContractViolationException.Check((b0 & 0x70) == 0 && (b1 & 0x80) == 0, $"server frame with RSV or MASK set ({b0:x2} {b1:x2})");
            long length = b1 & 0x7F;
            if (length == 126)
            {
                ContractViolationException.Check(reader.TryReadBigEndian(out short l16), "cut 16-bit length");
                length = (ushort)l16;
            }
            else if (length == 127)
            {
                ContractViolationException.Check(reader.TryReadBigEndian(out long l64) && l64 >= 0, "bad 64-bit length");
                length = l64;
            }

            ContractViolationException.Check(reader.Remaining >= length, $"frame of {length} bytes cut short");
            var payload = bytes.Slice(reader.Position, length);
            reader.Advance(length);
            var opcode = (WebSocketOpcode)(b0 & 0x0F);
            ContractViolationException.Check(opcode is WebSocketOpcode.Binary or WebSocketOpcode.Close or WebSocketOpcode.Ping or WebSocketOpcode.Pong,
                $"server sent opcode {opcode}");
            ContractViolationException.Check((b0 & 0x80) != 0, "server sent a fragment");
            if (opcode == WebSocketOpcode.Close)
            {
                sawClose = true;
                ContractViolationException.Check(length is 0 or (>= 2 and <= 125), $"close payload of {length} bytes");
                if (length >= 2)
                {
                    ushort value = BinaryPrimitives.ReadUInt16BigEndian(payload.Slice(0, 2).ToArray());
                    ContractViolationException.Check(IsValidOnWire(value), $"close code {value} on the wire");
                }
            }
            else if (opcode != WebSocketOpcode.Binary)
            {
                ContractViolationException.Check(length <= 125, $"control frame of {length} bytes");
            }
        }
    }

    /// <summary>
    /// An independent model of the close code a conforming server records for <paramref name="data"/>, written from
    /// RFC 6455 and this handler's behaviour rather than from the connection's code: frames are taken one by one until the
    /// first that fails a rule (1002 framing, 1003 text, 1009 size, 1007 close reason), a close frame (its code, 1005
    /// when empty), a message the handler refuses (1007) or faults on (1011), or the end of the input (no close).
    /// </summary>
    private static ushort? ExpectedCloseStatus(ReadOnlySpan<byte> data)
    {
        int pos = 0;
        long fragmentLength = 0;
        bool open = false;
        var assembled = new List<byte>();
        while (true)
        {
            var rest = data[pos..];
            if (rest.Length < 2)
            {
                return null;
            }

            byte b0 = rest[0];
            byte b1 = rest[1];
            int opcode = b0 & 0x0F;
            bool fin = (b0 & 0x80) != 0;
            int len7 = b1 & 0x7F;
            int extended = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
            if (rest.Length < 2 + extended)
            {
                return null;
            }

            ulong length = (ulong)len7;
            if (extended > 0)
            {
                length = 0;
                for (int i = 0; i < extended; i++)
                {
                    length = (length << 8) | rest[2 + i];
                }
            }

            bool masked = (b1 & 0x80) != 0;
            if (length >> 63 != 0)
            {
                return CloseCodes.ProtocolError;
            }

            if (masked && rest.Length < 2 + extended + 4)
            {
                return null;
            }

            bool control = opcode >= 8;
            if (!masked || (b0 & 0x70) != 0 || opcode is not (0 or 1 or 2 or 8 or 9 or 10) || (control && (length > 125 || !fin)))
            {
                return CloseCodes.ProtocolError;
            }

            if (!control)
            {
                if (opcode == 1)
                {
                    return CloseCodes.UnsupportedData;
                }

                if ((opcode == 0) != open)
                {
                    return CloseCodes.ProtocolError; // a continuation outside a message, or a new message inside one
                }

                // Compared as unsigned 64-bit: fragmentLength ≤ 4096 and length < 2^63, so the sum cannot wrap.
                if ((ulong)fragmentLength + length > MaxMessageBytes)
                {
                    return CloseCodes.MessageTooBig;
                }
            }

            int headerLength = 2 + extended + 4;
            if ((ulong)(rest.Length - headerLength) < length)
            {
                return null;
            }

            byte[] payload = rest.Slice(headerLength, (int)length).ToArray();
            for (int i = 0; i < payload.Length; i++)
            {
                payload[i] ^= rest[2 + extended + (i % 4)];
            }

            pos += headerLength + payload.Length;
            if (opcode == 8)
            {
                if (payload.Length == 1)
                {
                    return CloseCodes.ProtocolError;
                }

                if (payload.Length == 0)
                {
                    return CloseCodes.NoStatus;
                }

                int code = (payload[0] << 8) | payload[1];
                if (!IsValidOnWire(code))
                {
                    return CloseCodes.ProtocolError;
                }

                return System.Text.Unicode.Utf8.IsValid(payload.AsSpan(2)) ? (ushort)code : CloseCodes.InvalidPayload;
            }

            if (control)
            {
                continue; // ping (answered) or pong (ignored)
            }

            assembled.AddRange(payload);
            fragmentLength += payload.Length;
            open = !fin;
            if (!fin)
            {
                continue;
            }

            byte[] message = [.. assembled];
            assembled.Clear();
            fragmentLength = 0;
            if (message.Length > 0 && message[0] == 0xc1)
            {
                return CloseCodes.InternalError; // the handler faults on purpose
            }

            if (ClientFrameReader.TryRead(new ReadOnlySequence<byte>(message), out _) == ReadStatus.Malformed)
            {
                return CloseCodes.InvalidPayload; // the handler closes; whatever follows cannot change the code
            }
        }
    }

    /// <summary>Waits for <paramref name="task"/> without throwing its fault (the caller inspects it).</summary>
    private static bool Finishes(Task task, TimeSpan timeout)
    {
        try
        {
            return task.Wait(timeout);
        }
        catch (AggregateException)
        {
            return true;
        }
    }

    /// <summary>RFC 6455 §7.4: 1000-1003, 1007-1014 and 3000-4999 may be sent; 1004-1006 and 1015 never.</summary>
    private static bool IsValidOnWire(int code) => code is (>= 1000 and <= 1003) or (>= 1007 and <= 1014) or (>= 3000 and <= 4999);

    /// <summary>What the handler throws on purpose: the one fault RunAsync documents.</summary>
    private sealed class HandlerFault : Exception
    {
        public HandlerFault()
            : base("Handler fault requested by the input.")
        {
        }
    }

    private sealed class Handler : IWebSocketMessageHandler
    {
        public bool Threw { get; private set; }

        public string? Error { get; private set; }

        public ValueTask OnMessageAsync(WebSocketConnection connection, ReadOnlySequence<byte> payload)
        {
            if (payload.Length > MaxMessageBytes)
            {
                Error ??= $"a {payload.Length}-byte message passed the {MaxMessageBytes}-byte limit";
            }

            if (!payload.IsEmpty && payload.FirstSpan[0] == 0xc1)
            {
                Threw = true;
                throw new HandlerFault();
            }

            var status = ClientFrameReader.TryRead(payload, out var frame);
            if (status == ReadStatus.Ok && frame.Type is FrameType.Subscribe or FrameType.Unsubscribe)
            {
                var items = new SubscribeItemReader(frame);
                while (items.TryNext(out _, out _))
                {
                }
            }

            if (status == ReadStatus.Malformed)
            {
                connection.Close(CloseCodes.InvalidPayload, "malformed frame");
                return ValueTask.CompletedTask;
            }

            // Answer like the gateway: an Error for Invalid/UnknownType, an Unsubscribed-shaped ack otherwise.
            var answer = OutboundFrame.Rent(64);
            if (status == ReadStatus.Ok)
            {
                ServerFrameWriter.WriteUnsubscribed(answer, frame.RequestId);
            }
            else
            {
                var code = status == ReadStatus.UnknownType ? ErrorCode.UnknownFrameType : ErrorCode.InvalidFrame;
                ServerFrameWriter.WriteError(answer, frame.RequestId, code, "fuzz");
            }

            answer.Seal();
            connection.TryEnqueue(answer); // a full queue or a close under way refuses it; both are fine here
            answer.Release();
            return ValueTask.CompletedTask;
        }
    }

    private sealed class Transport(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
