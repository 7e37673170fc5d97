using System.Buffers;
namespace Gateway.WebSockets;

public sealed partial class WebSocketConnection
{
    // 1 while frames queued by TryEnqueueDeferred wait for their producer's Wake.
    private int _wakeDeferred;

    /// <summary>
    /// Queues a sealed frame for sending. Thread-safe. On success takes one reference to <paramref name="frame"/>
    /// (the writer loop releases it after the write). Returns false, taking no reference, when the queue is at
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

        _writerSignal.Set();
        return true;
    }

    /// <summary>
    /// <see cref="TryEnqueue"/> without waking the writer loop, for a producer that enqueues to many connections in a
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

    /// <summary>Wakes the writer loop for frames queued by <see cref="TryEnqueueDeferred"/>. Thread-safe.</summary>
    public void Wake()
    {
        // Cleared before the signal: a deferred enqueue racing with this either is seen by the writer this wake
        // starts, or finds the flag clear and has its producer wake again.
        Volatile.Write(ref _wakeDeferred, 0);
        _writerSignal.Set();
    }

    private bool Add(OutboundFrame frame)
    {
        ArgumentNullException.ThrowIfNull(frame);
        if (!frame.IsSealed)
        {
            throw new ArgumentException("Seal the frame before enqueuing it.", nameof(frame));
        }

        int length = frame.Length;
        lock (_writerSignal)
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
    /// Queues a control frame the protocol requires (a pong) past the bounds: it is at most 127 bytes and answers the
    /// peer's own ping, so the peer controls how many there are only as fast as it sends pings we read. Transfers the
    /// caller's reference. Dropped (released) once a close frame is queued: nothing may follow a close frame.
    /// </summary>
    private void EnqueueControl(OutboundFrame frame)
    {
        lock (_writerSignal)
        {
            if (!_closeQueued && !IsAborted)
            {
                _queue.Enqueue(frame);
                Interlocked.Increment(ref _queuedFrames);
                Interlocked.Add(ref _queuedBytes, frame.Length);
                frame = null!;
            }
        }

        if (frame is null)
        {
            _writerSignal.Set();
        }
        else
        {
            frame.Release();
        }
    }

    /// <summary>
    /// The only writer of the transport's output. Waits for work, takes every frame queued so far in one swap, writes
    /// them all into the pipe and flushes once per batch. Ends after writing a close frame, on abort, or when the
    /// transport fails (which aborts the connection so the receive loop stops too).
    /// </summary>
    private async Task WriterLoopAsync()
    {
        var output = _transport.Output;
        var batch = new Queue<OutboundFrame>();
        bool failed = false;
        try
        {
            while (!IsAborted)
            {
                await _writerSignal.WaitAsync().ConfigureAwait(false);
                if (IsAborted)
                {
                    break;
                }

                // Swap the producers' queue with our empty one: one lock per batch, not per frame.
                lock (_writerSignal)
                {
                    (_queue, batch) = (batch, _queue);
                }

                if (batch.Count == 0)
                {
                    continue;
                }

                bool wroteClose = false;
                while (batch.TryDequeue(out var frame))
                {
                    int length = frame.Length;
                    if (!wroteClose)
                    {
                        output.Write(frame.Memory.Span);
                        wroteClose = frame.Opcode == WebSocketOpcode.Close;
                    }

                    Interlocked.Decrement(ref _queuedFrames);
                    Interlocked.Add(ref _queuedBytes, -length);
                    if (frame.Opcode == WebSocketOpcode.Pong)
                    {
                        Volatile.Write(ref _pongsQueued, 0);
                    }

                    // Whoever dequeues a frame owns its release. The bytes were just copied into the pipe's buffer,
                    // so this queue's reference ends here, before the flush (other connections may still hold theirs).
                    frame.Release();
                }

                Volatile.Write(ref _activity, 1);
                var flush = await output.FlushAsync().ConfigureAwait(false);
                if (flush.IsCanceled || flush.IsCompleted)
                {
                    failed = !flush.IsCanceled;
                    break;
                }

                if (wroteClose)
                {
                    break;
                }
            }
        }
        catch (Exception)
        {
            failed = true;
        }
        finally
        {
            ReleaseAll(batch);
        }

        if (failed)
        {
            Abort();
        }
    }

    /// <summary>Releases what is still queued once both loops are over, so no pooled buffer leaks.</summary>
    private void ReleaseQueued()
    {
        Queue<OutboundFrame> left;
        lock (_writerSignal)
        {
            left = _queue;
            _queue = new Queue<OutboundFrame>();
            _closeQueued = true;
        }

        ReleaseAll(left);
    }

    private void ReleaseAll(Queue<OutboundFrame> frames)
    {
        while (frames.TryDequeue(out var frame))
        {
            Interlocked.Decrement(ref _queuedFrames);
            Interlocked.Add(ref _queuedBytes, -frame.Length);
            frame.Release();
        }
    }
}
