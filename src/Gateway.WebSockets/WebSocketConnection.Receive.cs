using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Text.Unicode;
using Gateway.WebSockets.Internal;

namespace Gateway.WebSockets;

public sealed partial class WebSocketConnection
{
    // Receive-loop state; touched by the receive loop only (and by RunAsync after it ended).
    private byte[]? _fragmentBuffer;
    private int _fragmentLength;
    private bool _messageOpen;

    /// <summary>What the receive loop does after a frame.</summary>
    private enum FrameOutcome
    {
        Continue,
        Stop,
    }

    /// <summary>
    /// Parses every complete frame of one read of the transport's input and handles it, then advances once: consumed =
    /// end of the last whole frame, examined = end of the buffer, so an incomplete frame waits for more bytes instead
    /// of spinning. Payload slices are used only before that AdvanceTo. Returns true when the receive loop must stop.
    /// </summary>
    /// <remarks>
    /// Not async itself: the loop around it lives in <see cref="RunAsync"/>, whose state machine is the only one the
    /// receive side keeps per connection (a separate async loop method would hold a second box, ≈ 250 B, for the
    /// connection's whole life). A handler that does not complete at once makes this return a pending task, which the
    /// loop awaits before it advances the pipe.
    /// </remarks>
    private ValueTask<bool> ProcessRead(IWebSocketMessageHandler handler, in ReadResult result)
    {
        Volatile.Write(ref _activity, 1);
        Volatile.Write(ref _receivedTick, (int)_options.Timers.ProcessedTick);
        var buffer = result.Buffer;
        var consumed = buffer.Start;
        var outcome = FrameOutcome.Continue;
        while (true)
        {
            var remaining = buffer.Slice(consumed);
            var status = FrameHeader.TryParse(remaining, out var header);
            if (status == FrameHeaderStatus.Incomplete)
            {
                break;
            }

            if (status == FrameHeaderStatus.InvalidLength)
            {
                outcome = Fail(ProtocolError, "64-bit payload length with the top bit set");
                break;
            }

            var error = header.Validate();
            if (error != FrameHeaderError.None)
            {
                outcome = Fail(ProtocolError, FrameHeader.Describe(error));
                break;
            }

            if (!header.IsControl)
            {
                // Decided from the header alone, before a byte of payload is buffered.
                outcome = CheckDataFrame(header);
                if (outcome == FrameOutcome.Stop)
                {
                    break;
                }
            }

            long frameLength = header.HeaderLength + header.PayloadLength;
            if (remaining.Length < frameLength)
            {
                break;
            }

            var payload = remaining.Slice(header.HeaderLength, header.PayloadLength);

            // In place: the whole frame is buffered and is consumed in this same step, so it is unmasked once.
            Masking.Apply(payload, header.MaskKey, 0);
            consumed = payload.End;

            if (header.IsControl)
            {
                outcome = OnControlFrame(header.Opcode, payload);
            }
            else
            {
                // Synchronous fast path: a handler that completes at once costs no state machine and no allocation.
                var pending = OnDataFrame(handler, header.Fin, payload);
                if (!pending.IsCompletedSuccessfully)
                {
                    // The rest of this read (and the AdvanceTo) continues once the handler is done.
                    return ProcessRestAsync(handler, result, consumed, pending);
                }

                outcome = pending.Result;
            }

            if (outcome == FrameOutcome.Stop)
            {
                break;
            }
        }

        _transport.Input.AdvanceTo(consumed, buffer.End);
        return new(outcome == FrameOutcome.Stop || result.IsCompleted);
    }

    /// <summary>The slow path of <see cref="ProcessRead"/>: awaits a handler, then handles the rest of the read. Its state
    /// machine exists only while a handler is pending.</summary>
    private async ValueTask<bool> ProcessRestAsync(IWebSocketMessageHandler handler, ReadResult result, SequencePosition consumed,
        ValueTask<FrameOutcome> pending)
    {
        // Handler faults were turned into a close by OnDataFrame; anything thrown here failed under it and reaches
        // RunAsync, which aborts, exactly as when it is thrown on the synchronous path.
        var outcome = await pending.ConfigureAwait(false);
        if (outcome == FrameOutcome.Stop)
        {
            _transport.Input.AdvanceTo(consumed, result.Buffer.End);
            return true;
        }

        // The remaining frames of the read: the same loop again on the unconsumed part (a fresh ReadResult over it keeps
        // IsCompleted, so end of stream after the last frame still ends the loop).
        var rest = new ReadResult(result.Buffer.Slice(consumed), result.IsCanceled, result.IsCompleted);
        return await ProcessRead(handler, rest).ConfigureAwait(false);
    }

    private const ushort ProtocolError = 1002;
    private const ushort UnsupportedData = 1003;
    private const ushort InvalidPayload = 1007;
    private const ushort MessageTooBig = 1009;
    private const ushort InternalError = 1011;

    private FrameOutcome CheckDataFrame(in FrameHeader header)
    {
        switch (header.Opcode)
        {
            case WebSocketOpcode.Text:
                return Fail(UnsupportedData, "text frames are not supported");
            case WebSocketOpcode.Continuation when !_messageOpen:
                return Fail(ProtocolError, "continuation without a started message");
            case WebSocketOpcode.Binary when _messageOpen:
                return Fail(ProtocolError, "new message inside a fragmented message");
        }

        // PayloadLength can be up to 2^63 - 1, so adding it to the bytes already reassembled could wrap negative and
        // pass; 0 <= _fragmentLength <= MaxMessageBytes, so the subtraction cannot overflow.
        if (header.PayloadLength > _options.MaxMessageBytes - _fragmentLength)
        {
            return Fail(MessageTooBig, "message too big");
        }

        return FrameOutcome.Continue;
    }

    private ValueTask<FrameOutcome> OnDataFrame(IWebSocketMessageHandler handler, bool fin,
        in ReadOnlySequence<byte> payload)
    {
        bool closing;
        lock (_sync)
        {
            closing = _closeQueued;
        }

        if (fin && !_messageOpen)
        {
            // Single-frame message: hand over the pipe's own bytes, no copy. After we sent a close, data is dropped.
            return closing ? new(FrameOutcome.Continue) : Deliver(handler, payload);
        }

        // A fragment: only fragmented messages are copied, into one pooled buffer sized as they grow.
        _messageOpen = true;
        AppendFragment(payload);
        if (!fin)
        {
            return new(FrameOutcome.Continue);
        }

        _messageOpen = false;
        if (closing)
        {
            ReturnFragmentBuffer();
            return new(FrameOutcome.Continue);
        }

        var delivered = Deliver(handler, new ReadOnlySequence<byte>(_fragmentBuffer!, 0, _fragmentLength));
        if (delivered.IsCompletedSuccessfully)
        {
            ReturnFragmentBuffer();
            return delivered;
        }

        return ReturnFragmentBufferAfterAsync(delivered);
    }

    private async ValueTask<FrameOutcome> ReturnFragmentBufferAfterAsync(ValueTask<FrameOutcome> delivered)
    {
        try
        {
            return await delivered.ConfigureAwait(false);
        }
        finally
        {
            ReturnFragmentBuffer();
        }
    }

    private ValueTask<FrameOutcome> Deliver(IWebSocketMessageHandler handler, in ReadOnlySequence<byte> payload)
    {
        ValueTask pending;
        try
        {
            pending = handler.OnMessageAsync(this, payload);
        }
        catch (Exception ex)
        {
            return new(OnHandlerFault(ex));
        }

        if (pending.IsCompletedSuccessfully)
        {
            // Observe the result: a ValueTask backed by a pooled IValueTaskSource needs its GetResult call.
            pending.GetAwaiter().GetResult();
            return new(FrameOutcome.Continue);
        }

        return AwaitDeliveryAsync(pending);
    }

    private async ValueTask<FrameOutcome> AwaitDeliveryAsync(ValueTask pending)
    {
        try
        {
            await pending.ConfigureAwait(false);
            return FrameOutcome.Continue;
        }
        catch (Exception ex)
        {
            return OnHandlerFault(ex);
        }
    }

    private FrameOutcome OnHandlerFault(Exception ex)
    {
        _handlerError = ex;
        return Fail(InternalError, "internal error");
    }

    private void AppendFragment(in ReadOnlySequence<byte> payload)
    {
        int needed = _fragmentLength + (int)payload.Length; // ≤ MaxMessageBytes, checked from the header
        if (_fragmentBuffer is null || _fragmentBuffer.Length < needed)
        {
            // Double so a message in many small fragments costs O(log n) copies; never above the message limit.
            int size = Math.Max(needed, Math.Min(Math.Max(4096, (_fragmentBuffer?.Length ?? 0) * 2), _options.MaxMessageBytes));
            byte[] bigger = ArrayPool<byte>.Shared.Rent(size);
            if (_fragmentBuffer is not null)
            {
                _fragmentBuffer.AsSpan(0, _fragmentLength).CopyTo(bigger);
                ArrayPool<byte>.Shared.Return(_fragmentBuffer);
            }

            _fragmentBuffer = bigger;
        }

        payload.CopyTo(_fragmentBuffer.AsSpan(_fragmentLength));
        _fragmentLength = needed;
    }

    private void ReturnFragmentBuffer()
    {
        // Returned after every fragmented message: an idle connection holds no reassembly buffer.
        if (_fragmentBuffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_fragmentBuffer);
            _fragmentBuffer = null;
        }

        _fragmentLength = 0;
    }

    private FrameOutcome OnControlFrame(WebSocketOpcode opcode, in ReadOnlySequence<byte> payload)
    {
        switch (opcode)
        {
            case WebSocketOpcode.Ping:
                QueuePong(payload);
                return FrameOutcome.Continue;
            case WebSocketOpcode.Pong:
                // Unsolicited pongs are allowed as heartbeats (§5.5.3); ours need no answer matched.
                return FrameOutcome.Continue;
            default:
                return OnCloseFrame(payload);
        }
    }

    /// <summary>
    /// Answers a ping. At most one pong waits in the queue: a peer that pings without reading would otherwise grow the
    /// queue without bound (pongs bypass its limits). RFC 6455 §5.5.3 lets an endpoint answer only the most recent of
    /// several pings it has not answered yet, so a ping that finds a pong still waiting rewrites that pong with its
    /// own payload: the pong that finally goes out answers the newest ping (a peer matching pongs to its pings, e.g.
    /// to measure round trips, sees its latest one answered rather than a stale one).
    /// </summary>
    private void QueuePong(in ReadOnlySequence<byte> payload)
    {
        lock (_sync)
        {
            if (_queuedPong is { } waiting)
            {
                // Still queued, so the pump has not written it (it dequeues, writes and clears _queuedPong under this
                // lock) and the queue holds the only reference: rewriting it in place is invisible to anyone else.
                int before = waiting.Length;
                waiting.ReplaceControlPayload(payload);
                Interlocked.Add(ref _queuedBytes, waiting.Length - before);
                return;
            }
        }

        // Room for any control payload, so a later ping's payload always fits when it rewrites this pong. Only the
        // receive loop creates pongs, so no other pong can be queued between the check above and the enqueue below.
        var pong = OutboundFrame.Rent(FrameHeader.MaxControlPayload);
        payload.CopyTo(pong.GetSpan((int)payload.Length));
        pong.Advance((int)payload.Length);
        EnqueuePong(pong.Seal(WebSocketOpcode.Pong));
    }

    private FrameOutcome OnCloseFrame(in ReadOnlySequence<byte> payload)
    {
        Span<byte> body = stackalloc byte[FrameHeader.MaxControlPayload];
        int length = (int)payload.Length;
        payload.CopyTo(body);
        body = body[..length];

        bool weStarted;
        lock (_sync)
        {
            weStarted = _closeQueued;
        }

        if (weStarted)
        {
            // The peer's answer to our close (or a crossing close): the handshake is complete.
            return FrameOutcome.Stop;
        }

        if (length == 1)
        {
            return Fail(ProtocolError, "close frame with a 1-byte payload");
        }

        if (length == 0)
        {
            // No code: record 1005 locally (it never goes on the wire) and echo an empty close.
            TryStartClose(1005, null, OutboundFrame.Rent(0).Seal(WebSocketOpcode.Close));
            return FrameOutcome.Stop;
        }

        ushort code = BinaryPrimitives.ReadUInt16BigEndian(body);
        if (!CloseStatusRules.IsValidOnWire(code))
        {
            return Fail(ProtocolError, "invalid close code");
        }

        var reasonBytes = body[2..];
        if (!Utf8.IsValid(reasonBytes))
        {
            return Fail(InvalidPayload, "close reason is not valid UTF-8");
        }

        // Echo the peer's code (RFC 6455 §5.5.1), then the transport closes once the echo is written.
        var echo = OutboundFrame.Rent(length);
        body.CopyTo(echo.GetSpan(length));
        echo.Advance(length);
        TryStartClose(code, DecodeReason(reasonBytes), echo.Seal(WebSocketOpcode.Close));
        return FrameOutcome.Stop;
    }

    /// <summary>Fails the connection (RFC 6455 §7.1.7): send a close with <paramref name="code"/>, stop reading.</summary>
    private FrameOutcome Fail(ushort code, string reason)
    {
        TryStartClose(code, reason, CreateCloseFrame(code, reason));
        return FrameOutcome.Stop;
    }
}
