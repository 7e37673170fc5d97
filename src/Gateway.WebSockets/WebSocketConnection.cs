using System.IO.Pipelines;
using System.Runtime.ExceptionServices;
using System.Text;
using System.Text.Unicode;
using Gateway.WebSockets.Internal;

namespace Gateway.WebSockets;

/// <summary>
/// The server side of one RFC 6455 connection over a raw <see cref="IDuplexPipe"/> (after
/// <c>WebSocketHandshake.AcceptAsync</c> accepted it). Binary messages only; text frames close with 1003.
/// </summary>
/// <remarks>
/// <para><b>Loops.</b> <see cref="RunAsync"/> runs one receive loop (the only reader of the transport's input) and one
/// writer pump (the only writer of the transport's output: a thread-pool work item, not a loop that waits, so an idle
/// connection holds no writer state machine). Everything sent — application frames, pongs, pings, close frames — goes
/// through the pump's queue, because a <see cref="PipeWriter"/> is not thread-safe.</para>
/// <para><b>Thread safety.</b> <see cref="TryEnqueue"/>, <see cref="Close"/>, <see cref="Abort"/> and every property may
/// be called from any thread, concurrently with each other and with the loops. <see cref="RunAsync"/> may be called once.
/// <see cref="IWebSocketMessageHandler.OnMessageAsync"/> is called from the receive loop, one message at a time, and
/// may itself call <see cref="TryEnqueue"/> and <see cref="Close"/>. Do not touch the transport while the connection
/// runs; <see cref="RunAsync"/> completes both of its pipes before it returns.</para>
/// <para><b>Ownership of frames.</b> A successful <see cref="TryEnqueue"/> takes one reference to the frame; the writer
/// pump releases it once its bytes are in the output pipe. A refused frame is left untouched.</para>
/// <para><b>Closing.</b> A close starts with <see cref="Close"/> (server-initiated: close frame after the queued frames,
/// then wait for the peer's close), with a peer's close frame (echoed, then the transport closes), or with a protocol
/// violation (close frame with the code, then the transport closes without waiting). From that moment
/// <see cref="Closing"/> is cancelled, <see cref="TryEnqueue"/> refuses, and the whole close is bounded by
/// <see cref="WebSocketOptions.CloseTimeout"/>. <see cref="Abort"/> ends at once.</para>
/// </remarks>
public sealed partial class WebSocketConnection
{
    private readonly IDuplexPipe _transport;
    private readonly WebSocketOptions _options;
    private readonly CancellationTokenSource _closing = new();

    // Guards the send queue and the fields below. A lock of its own rather than the queue itself: what it protects is
    // the connection's send state, not one collection.
    private readonly Lock _sync = new();
    private readonly Queue<OutboundFrame> _queue = new();
    private TaskCompletionSource? _roomWaiter;
    private bool _closeQueued;
    private ushort? _closeStatus;
    private string? _closeReason;
    private CancellationTokenSource? _closeTimer;

    private int _queuedFrames;
    private long _queuedBytes;
    private int _aborted;
    private int _started;
    private int _activity;
    // The wheel tick of the last read from the peer (low 32 bits; differences are taken unchecked). Only the keep-alive
    // callback reads it, to close a connection silent for IdleTimeout whatever the keep-alive interval.
    private int _receivedTick;
    // The pong waiting in the queue, if any (guarded by the queue's lock): a later ping rewrites it (QueuePong).
    private OutboundFrame? _queuedPong;
    private Exception? _handlerError;
    private TimerWheelEntry? _keepAlive;

    /// <summary>Creates a connection over a transport whose upgrade was accepted. Nothing runs until <see cref="RunAsync"/>.</summary>
    /// <param name="transport">The raw transport, positioned right after the handshake.</param>
    /// <param name="options">Limits and timers.</param>
    public WebSocketConnection(IDuplexPipe transport, WebSocketOptions options)
    {
        ArgumentNullException.ThrowIfNull(transport);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxMessageBytes, 0);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxOutboundFrames, 1);
        _transport = transport;
        _options = options;
    }

    /// <summary>The code that ended the connection, sent or received (1005 for a peer close without a code); null if none.</summary>
    public ushort? CloseStatus
    {
        get
        {
            lock (_sync)
            {
                return _closeStatus;
            }
        }
    }

    /// <summary>The reason that came with <see cref="CloseStatus"/>.</summary>
    public string? CloseReason
    {
        get
        {
            lock (_sync)
            {
                return _closeReason;
            }
        }
    }

    /// <summary>The timer wheel of this connection's options: hosts schedule their per-connection deadlines on it.</summary>
    public TimerWheel Timers => _options.Timers;

    /// <summary>Cancelled once the connection starts closing (any cause, abort and end of stream included).</summary>
    public CancellationToken Closing => _closing.Token;

    /// <summary>Bytes waiting in the send queue (enqueued, not yet written to the transport).</summary>
    public long BytesQueued => Volatile.Read(ref _queuedBytes);

    /// <summary>Frames waiting in the send queue.</summary>
    public int FramesQueued => Volatile.Read(ref _queuedFrames);

    /// <summary>
    /// Runs the receive loop and the writer pump until the connection is over; the returned task is the connection's lifetime.
    /// Peer misbehaviour never faults it: protocol errors end in the matching close code. If the handler throws, the
    /// connection closes with 1011 and the task then faults with the handler's exception. When it completes, both pipes
    /// of the transport are completed and every queued frame has been released.
    /// </summary>
    /// <param name="handler">Receives complete binary messages.</param>
    /// <param name="cancellationToken">Aborts the connection (no close handshake), e.g. when the transport is gone.</param>
    public async Task RunAsync(IWebSocketMessageHandler handler, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(handler);
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("RunAsync was already called.");
        }

        using var registration = cancellationToken.Register(static s => ((WebSocketConnection)s!).Abort(), this);
        if (_options.KeepAliveInterval > TimeSpan.Zero)
        {
            // One entry on the shared wheel (≈ 70 B) instead of a Timer (Timer + TimerHolder + TimerQueueTimer ≈ 150 B).
            _receivedTick = (int)_options.Timers.ProcessedTick;
            _keepAlive = new TimerWheelEntry(_options.Timers, static s => ((WebSocketConnection)s!).OnKeepAliveDue(), this);
            _options.Timers.Schedule(_keepAlive, NextKeepAlive(TimeSpan.Zero));
        }

        ReleasePump();
        try
        {
            // The receive loop, inline: the only reader of the transport's input. Kept in this method rather than an
            // async method of its own so that a connection holds one state machine for both (≈ 170 B less per idle
            // connection); the per-read work is synchronous (ProcessRead) and its locals are not hoisted here.
            while (true)
            {
                // _transport.Input each time rather than a local: a local would be one more field of this state machine.
                var result = await _transport.Input.ReadAsync().ConfigureAwait(false);
                if (result.IsCanceled || IsAborted)
                {
                    // Abort() cancelled the read; leave the bytes where they are.
                    _transport.Input.AdvanceTo(result.Buffer.Start);
                    break;
                }

                var stop = ProcessRead(handler, result);
                if (stop.IsCompletedSuccessfully ? stop.Result : await stop.ConfigureAwait(false))
                {
                    // A close, a protocol error, or end of stream without a close frame (the peer is gone: 1006
                    // territory, nothing to record).
                    break;
                }
            }
        }
        catch (Exception)
        {
            // The transport failed under the reader (e.g. connection reset): nothing more to say to the peer.
            Abort();
        }

        bool closeQueued;
        lock (_sync)
        {
            closeQueued = _closeQueued;
        }

        if (!closeQueued)
        {
            // The receive loop ended without a close in flight (end of stream, abort): nothing left worth sending.
            Abort();
        }

        // The writer ends after writing the close frame, or on abort; the close timer bounds how long that takes.
        await WaitForPumpAsync().ConfigureAwait(false);

        CancellationTokenSource? timer;
        lock (_sync)
        {
            timer = _closeTimer;
            _closeTimer = null;
        }

        timer?.Dispose();
        CancelClosing();
        if (_keepAlive is not null)
        {
            // After CancelClosing: a tick running right now sees Closing and does not schedule itself again.
            _options.Timers.Cancel(_keepAlive);
        }

        ReleaseQueued();
        ReturnFragmentBuffer();
        await _transport.Output.CompleteAsync().ConfigureAwait(false);
        await _transport.Input.CompleteAsync().ConfigureAwait(false);

        if (_handlerError is not null)
        {
            ExceptionDispatchInfo.Throw(_handlerError);
        }
    }

    /// <summary>
    /// Starts a server-initiated close: a close frame goes out after what is already queued (it bypasses the queue
    /// bounds), then the connection waits for the peer's close frame, all within <see cref="WebSocketOptions.CloseTimeout"/>.
    /// Thread-safe and idempotent: only the first close (from here, from the peer or from a protocol error) counts.
    /// </summary>
    /// <param name="code">A close code valid on the wire (1000-1003, 1007-1014, 3000-4999).</param>
    /// <param name="reason">A short reason; truncated to the 123 UTF-8 bytes a close frame can hold.</param>
    public void Close(ushort code, string reason)
    {
        if (!CloseStatusRules.IsValidOnWire(code))
        {
            throw new ArgumentOutOfRangeException(nameof(code), code, "Not a close code that may be sent.");
        }

        TryStartClose(code, reason ?? string.Empty, CreateCloseFrame(code, reason));
    }

    /// <summary>Ends the connection now, without a close handshake. Thread-safe and idempotent.</summary>
    public void Abort()
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
        {
            return;
        }

        // Both calls are thread-safe on a Pipe and make the pending (or next) read/flush return IsCanceled.
        _transport.Input.CancelPendingRead();
        _transport.Output.CancelPendingFlush();
        Schedule();
        CancelClosing();
    }

    private bool IsAborted => Volatile.Read(ref _aborted) != 0;

    /// <summary>
    /// Queues <paramref name="closeFrame"/> as the only close frame and arms the close timer. Returns false (and releases
    /// the frame) when a close was already under way.
    /// </summary>
    private bool TryStartClose(ushort status, string? reason, OutboundFrame closeFrame)
    {
        lock (_sync)
        {
            if (_closeQueued || IsAborted)
            {
                closeFrame.Release();
                return false;
            }

            _closeQueued = true;
            _closeStatus = status;
            _closeReason = reason;
            _queue.Enqueue(closeFrame);
            Interlocked.Increment(ref _queuedFrames);
            Interlocked.Add(ref _queuedBytes, closeFrame.Length);
            _closeTimer = new CancellationTokenSource();
            _closeTimer.Token.UnsafeRegister(static s => ((WebSocketConnection)s!).Abort(), this);
            _closeTimer.CancelAfter(_options.CloseTimeout);
        }

        Schedule();
        CancelClosing();
        return true;
    }

    private void CancelClosing()
    {
        try
        {
            _closing.Cancel();
        }
        catch (AggregateException)
        {
            // A host callback on Closing threw; the close itself must go on regardless.
        }
    }

    /// <summary>Builds a close frame: 2-byte big-endian code, then the reason cut to fit 125 - 2 = 123 bytes on a character boundary.</summary>
    private static OutboundFrame CreateCloseFrame(ushort code, string? reason)
    {
        var frame = OutboundFrame.Rent(FrameHeader.MaxControlPayload);
        Span<byte> span = frame.GetSpan(FrameHeader.MaxControlPayload);
        span[0] = (byte)(code >> 8);
        span[1] = (byte)code;
        int written = 0;
        if (!string.IsNullOrEmpty(reason))
        {
            // FromUtf16 stops before a character that does not fit, so the reason is never cut mid-sequence.
            Utf8.FromUtf16(reason, span.Slice(2, FrameHeader.MaxControlPayload - 2), out _, out written);
        }

        frame.Advance(2 + written);
        return frame.Seal(WebSocketOpcode.Close);
    }

    private void OnKeepAliveDue()
    {
        var silentFor = OnKeepAliveTick();
        if (!_closing.IsCancellationRequested)
        {
            _options.Timers.Schedule(_keepAlive!, NextKeepAlive(silentFor));

            // RunAsync cancels Closing, then the entry: re-checking after scheduling undoes a schedule that raced with it.
            if (_closing.IsCancellationRequested)
            {
                _options.Timers.Cancel(_keepAlive!);
            }
        }
    }

    /// <summary>The next keep-alive check: one interval on, or sooner when the idle deadline comes first, so that a
    /// silent connection is closed IdleTimeout after its last byte (not up to one interval later).</summary>
    private TimeSpan NextKeepAlive(TimeSpan silentFor)
    {
        var next = _options.KeepAliveInterval;
        if (_options.IdleTimeout > TimeSpan.Zero && _options.IdleTimeout - silentFor is var left && left > TimeSpan.Zero && left < next)
        {
            next = left;
        }

        return next;
    }

    /// <summary>Closes a connection silent for IdleTimeout, pings one with no traffic since the last check; returns how
    /// long the peer has been silent.</summary>
    private TimeSpan OnKeepAliveTick()
    {
        if (_closing.IsCancellationRequested)
        {
            return TimeSpan.Zero;
        }

        // Nothing received for IdleTimeout (any byte counts, also part of a frame): the peer is gone, half-open or
        // stalled. Close; the close timer aborts if the peer does not answer.
        var wheel = _options.Timers;
        var silentFor = unchecked((int)wheel.ProcessedTick - Volatile.Read(ref _receivedTick)) * wheel.Tick;
        if (_options.IdleTimeout > TimeSpan.Zero && silentFor >= _options.IdleTimeout)
        {
            Close(1001, "idle timeout");
            return silentFor;
        }

        // Any frame read or written since the last check means the connection is not idle.
        if (Interlocked.Exchange(ref _activity, 0) != 0)
        {
            return silentFor;
        }

        var ping = OutboundFrame.Rent(0).Seal(WebSocketOpcode.Ping);
        TryEnqueue(ping);
        ping.Release();
        return silentFor;
    }

    private static string DecodeReason(ReadOnlySpan<byte> utf8) => Encoding.UTF8.GetString(utf8);
}
