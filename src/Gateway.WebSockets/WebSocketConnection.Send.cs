using System.Buffers;
using System.IO.Pipelines;

namespace Gateway.WebSockets;

public sealed partial class WebSocketConnection : IThreadPoolWorkItem
{
    // The writer pump's states (_pump). Held (Running) from construction until RunAsync releases it.
    private const int PumpIdle = 0;     // nothing queued that it has not written; the next Schedule queues it
    private const int PumpRunning = 1;  // queued, writing, or waiting for a flush
    private const int PumpRerun = 2;    // as Running, and frames were queued since it last looked
    private const int PumpDone = 3;     // wrote the close frame, was aborted, or the transport failed

    private int _pump = PumpRunning;

    // Only while a flush waits for the transport (backpressure): the flush, whether a close frame was in it, and the
    // continuation that resumes the pump (created at the first such wait, then reused).
    private ValueTask<FlushResult> _pendingFlush;
    private bool _pendingFlushHasClose;
    private Action? _onFlushed;

    // Created only if RunAsync has to wait for the pump to finish.
    private TaskCompletionSource? _pumpDone;

    // 1 while frames queued by TryEnqueueDeferred wait for their producer's Wake.
    private int _wakeDeferred;

    /// <summary>
    /// Queues a sealed frame for sending. Thread-safe. On success takes one reference to <paramref name="frame"/>
    /// (the writer pump releases it after the write). Returns false, taking no reference, when the queue is at
    /// <see cref="WebSocketOptions.MaxOutboundFrames"/> or would pass <see cref="WebSocketOptions.MaxOutboundBytes"/>,
    /// or when the connection is closing: the caller applies its slow-consumer policy (typically
    /// <see cref="Close"/> with 4002).
    /// </summary>
    /// <param name="frame">A sealed frame.</param>
    public bool TryEnqueue(OutboundFrame frame)
    {
        if (!Add(frame))
        {
            return false;
        }

        Schedule();
        return true;
    }

    /// <summary>
    /// <see cref="TryEnqueue"/> without waking the writer pump, for a producer that enqueues to many connections in a
    /// pass (a fanout of several events) and wakes each once at the end: the writer then writes everything with one
    /// flush, one send for many frames. <paramref name="wakeNeeded"/> is true for the first deferred frame since the
    /// last <see cref="Wake"/>: the caller must then call <see cref="Wake"/>, once for any number of frames. Until
    /// then a deferred frame waits (another producer's wake sends it earlier).
    /// </summary>
    /// <param name="frame">A sealed frame.</param>
    /// <param name="wakeNeeded">True when this connection has no wake pending: call <see cref="Wake"/> after the pass.</param>
    /// <returns>As <see cref="TryEnqueue"/>.</returns>
    public bool TryEnqueueDeferred(OutboundFrame frame, out bool wakeNeeded)
    {
        if (!Add(frame))
        {
            wakeNeeded = false;
            return false;
        }

        wakeNeeded = Interlocked.Exchange(ref _wakeDeferred, 1) == 0;
        return true;
    }

    /// <summary>Wakes the writer pump for frames queued by <see cref="TryEnqueueDeferred"/>. Thread-safe.</summary>
    public void Wake()
    {
        // Cleared before the signal: a deferred enqueue racing with this either is seen by the writer this wake
        // starts, or finds the flag clear and has its producer wake again.
        Volatile.Write(ref _wakeDeferred, 0);
        Schedule();
    }

    private bool Add(OutboundFrame frame)
    {
        ArgumentNullException.ThrowIfNull(frame);
        if (!frame.IsSealed)
        {
            throw new ArgumentException("Seal the frame before enqueuing it.", nameof(frame));
        }

        int length = frame.Length;
        lock (_sync)
        {
            if (_closeQueued || IsAborted ||
                _queuedFrames >= _options.MaxOutboundFrames ||
                _queuedBytes + length > _options.MaxOutboundBytes)
            {
                return false;
            }

            frame.AddRef();
            _queue.Enqueue(frame);
            Interlocked.Increment(ref _queuedFrames);
            Interlocked.Add(ref _queuedBytes, length);
        }

        return true;
    }

    /// <summary>
    /// Queues a pong past the bounds: it is at most 127 bytes, answers the peer's own ping, and at most one waits at a
    /// time (<see cref="QueuePong"/>). Transfers the caller's reference. Dropped (released) once a close frame is
    /// queued: nothing may follow a close frame.
    /// </summary>
    private void EnqueuePong(OutboundFrame frame)
    {
        lock (_sync)
        {
            if (!_closeQueued && !IsAborted)
            {
                _queuedPong = frame;
                _queue.Enqueue(frame);
                Interlocked.Increment(ref _queuedFrames);
                Interlocked.Add(ref _queuedBytes, frame.Length);
                frame = null!;
            }
        }

        if (frame is null)
        {
            Schedule();
        }
        else
        {
            frame.Release();
        }
    }

    /// <summary>
    /// Makes sure the pump runs after this call: queues it on the thread pool when idle, or asks a running pump to look
    /// again. Lock-free; never runs the pump inline, so a producer (e.g. a fanout loop) never ends up writing.
    /// </summary>
    private void Schedule()
    {
        while (true)
        {
            int state = Volatile.Read(ref _pump);
            if (state == PumpIdle)
            {
                if (Interlocked.CompareExchange(ref _pump, PumpRunning, PumpIdle) == PumpIdle)
                {
                    ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: true);
                    return;
                }
            }
            else if (state == PumpRunning)
            {
                if (Interlocked.CompareExchange(ref _pump, PumpRerun, PumpRunning) == PumpRunning)
                {
                    return;
                }
            }
            else
            {
                return; // a rerun is already asked for, or the pump is done
            }
        }
    }

    /// <summary>
    /// Whether the writer pump is idle (not queued, not running, not waiting on a flush). For tests: a frame queued by
    /// <see cref="TryEnqueueDeferred"/> must leave it idle, which a test can check at once instead of waiting some time
    /// for a write that should not happen.
    /// </summary>
    internal bool IsWriterIdle => Volatile.Read(ref _pump) == PumpIdle;

    /// <summary>Starts the pump held since construction (RunAsync): it runs now if anything was queued meanwhile.</summary>
    private void ReleasePump()
    {
        if (Interlocked.CompareExchange(ref _pump, PumpIdle, PumpRunning) != PumpRunning)
        {
            Volatile.Write(ref _pump, PumpRunning); // Rerun: frames (or an abort) are waiting
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: true);
        }
    }

    /// <summary>The pump as a thread-pool work item: the connection is its own (no allocation per run). Not for callers.</summary>
    void IThreadPoolWorkItem.Execute() => Pump();

    /// <summary>
    /// The only writer of the transport's output. Writes every frame queued so far into the pipe and flushes once per
    /// pass; goes idle when nothing new was queued meanwhile. No state machine per connection: it runs as a work item
    /// and, only when a flush has to wait for the transport, resumes from the flush's completion. Ends after writing a
    /// close frame, on abort, or when the transport fails (which aborts the connection so the receive loop stops too).
    /// </summary>
    private void Pump()
    {
        var output = _transport.Output;
        while (true)
        {
            // Everything queued before this write is taken by this pass; a Schedule after it asks for another.
            Volatile.Write(ref _pump, PumpRunning);
            if (IsAborted)
            {
                FinishPump(failed: false);
                return;
            }

            bool wrote = false, wroteClose = false;
            long now = 0;
            TaskCompletionSource? roomWaiter;
            lock (_sync)
            {
                while (_queue.TryDequeue(out var frame))
                {
                    int length = frame.Length;
                    if (!wroteClose)
                    {
                        // A copy into the pipe's current block: short enough to hold the producers off meanwhile.
                        output.Write(frame.Memory.Span);
                        wrote = true;
                        wroteClose = frame.Opcode == WebSocketOpcode.Close;
                        if (frame.Timestamp != 0 && _options.TimestampedFrameWritten is { } written)
                        {
                            written(frame.Timestamp, now != 0 ? now : now = System.Diagnostics.Stopwatch.GetTimestamp());
                        }
                    }

                    Interlocked.Decrement(ref _queuedFrames);
                    Interlocked.Add(ref _queuedBytes, -length);
                    if (ReferenceEquals(frame, _queuedPong))
                    {
                        // Written: from here a ping needs a pong of its own.
                        _queuedPong = null;
                    }

                    // Whoever dequeues a frame owns its release. Its bytes are in the pipe's buffer now, so this queue's
                    // reference ends here, before the flush (other connections may still hold theirs).
                    frame.Release();
                }

                // The queue is empty now: whoever waits for room (WaitForQueueAtMostAsync) looks again.
                roomWaiter = _roomWaiter;
                _roomWaiter = null;
            }

            roomWaiter?.TrySetResult();

            if (wrote)
            {
                Volatile.Write(ref _activity, 1);
                ValueTask<FlushResult> flush;
                try
                {
                    flush = output.FlushAsync();
                }
                catch (Exception)
                {
                    FinishPump(failed: true);
                    return;
                }

                if (!flush.IsCompleted)
                {
                    // Backpressure (or a slow transport): resume when the flush completes, holding the Running state.
                    _pendingFlush = flush;
                    _pendingFlushHasClose = wroteClose;
                    flush.GetAwaiter().UnsafeOnCompleted(_onFlushed ??= OnFlushed);
                    return;
                }

                if (!AfterFlush(flush, wroteClose))
                {
                    return;
                }
            }

            if (Interlocked.CompareExchange(ref _pump, PumpIdle, PumpRunning) == PumpRunning)
            {
                return; // nothing was queued since this pass looked
            }
        }
    }

    private void OnFlushed()
    {
        var flush = _pendingFlush;
        _pendingFlush = default;
        if (AfterFlush(flush, _pendingFlushHasClose))
        {
            Pump(); // on the flush's completion thread: frames queued meanwhile are written in this pass
        }
    }

    /// <summary>Observes a completed flush; false when the pump has finished (close frame out, abort, or failure).</summary>
    private bool AfterFlush(ValueTask<FlushResult> flush, bool wroteClose)
    {
        FlushResult result;
        try
        {
            result = flush.GetAwaiter().GetResult();
        }
        catch (Exception)
        {
            FinishPump(failed: true);
            return false;
        }

        if (result.IsCanceled || result.IsCompleted)
        {
            // Cancelled: Abort() (which ends everything anyway). Completed: the transport is gone under us.
            FinishPump(failed: !result.IsCanceled);
            return false;
        }

        if (wroteClose)
        {
            FinishPump(failed: false); // nothing may follow a close frame
            return false;
        }

        return true;
    }

    private void FinishPump(bool failed)
    {
        TaskCompletionSource? waiter;
        lock (_sync)
        {
            Volatile.Write(ref _pump, PumpDone);
            waiter = _pumpDone;
        }

        if (failed)
        {
            Abort();
        }

        waiter?.TrySetResult();
    }

    /// <summary>Completes when the pump has finished (RunAsync's end; a task exists only if it has to wait).</summary>
    private Task WaitForPumpAsync()
    {
        lock (_sync)
        {
            if (Volatile.Read(ref _pump) == PumpDone)
            {
                return Task.CompletedTask;
            }

            _pumpDone ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _pumpDone.Task;
        }
    }

    /// <summary>Releases what is still queued once both loops are over, so no pooled buffer leaks.</summary>
    private void ReleaseQueued()
    {
        TaskCompletionSource? roomWaiter;
        lock (_sync)
        {
            _closeQueued = true;
            _queuedPong = null;
            while (_queue.TryDequeue(out var frame))
            {
                Interlocked.Decrement(ref _queuedFrames);
                Interlocked.Add(ref _queuedBytes, -frame.Length);
                frame.Release();
            }

            roomWaiter = _roomWaiter;
            _roomWaiter = null;
        }

        roomWaiter?.TrySetResult();
    }

    /// <summary>
    /// Completes once at most <paramref name="frames"/> frames and <paramref name="bytes"/> bytes wait in the send queue:
    /// at once when that holds now, otherwise when the writer pump has drained the queue into the transport (it takes
    /// everything queued in one pass). A producer with more to send than the queue should hold (catch-up replaying
    /// history) waits here instead of filling the queue up to the slow-consumer bound. Does not complete while the
    /// transport does not take bytes; pass a token that ends with <see cref="Closing"/>.
    /// </summary>
    public ValueTask WaitForQueueAtMostAsync(int frames, long bytes, CancellationToken cancellationToken)
    {
        return FramesQueued <= frames && BytesQueued <= bytes ? default : WaitAsync(cancellationToken);

        async ValueTask WaitAsync(CancellationToken ct)
        {
            while (true)
            {
                Task drained;
                lock (_sync)
                {
                    // Checked under the lock the pump drains under, so a drain cannot slip between check and wait.
                    if (FramesQueued <= frames && BytesQueued <= bytes)
                    {
                        return;
                    }

                    _roomWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    drained = _roomWaiter.Task;
                }

                await drained.WaitAsync(ct).ConfigureAwait(false);
            }
        }
    }
}
