using System.Threading.Channels;
using Gateway.Domain.Ports;

namespace Gateway.Domain.InProcess;

/// <summary>
/// The embedded <see cref="IEventBus"/>: one dispatch loop delivers every envelope, in publish order, to every
/// handler subscribed at the time it is dispatched.
/// </summary>
/// <remarks>
/// <para>
/// Publishing only enqueues (the queue is unbounded), so a slow handler delays dispatch but never the publisher,
/// i.e. never the write service's commit loop. Handlers run one after another on the dispatch loop and must be
/// quick: hand work to your own queue (a gateway enqueues to its per-connection writer and returns).
/// </para>
/// <para>
/// A handler that throws is reported through the error callback and skipped; the loop carries on with the next
/// handler and envelope. All members are thread-safe.
/// </para>
/// </remarks>
public sealed class InProcessEventBus : IEventBus, IAsyncDisposable
{
    private readonly Channel<Item> _queue = Channel.CreateUnbounded<Item>(new UnboundedChannelOptions
    {
        SingleReader = true,
        SingleWriter = false,
        AllowSynchronousContinuations = false,
    });

    private readonly Action<EventEnvelope, Exception>? _onHandlerError;
    private readonly Lock _handlersLock = new();
    private readonly Task _loop;

    // Copy-on-write: the dispatch loop reads the current array without a lock; (un)subscribe replaces it.
    private volatile Subscription[] _handlers = [];
    private long _handlerFailures;

    /// <summary>Starts the dispatch loop.</summary>
    /// <param name="onHandlerError">Called on the dispatch loop when a handler throws (log it); may be null.</param>
    public InProcessEventBus(Action<EventEnvelope, Exception>? onHandlerError = null)
    {
        _onHandlerError = onHandlerError;
        _loop = Task.Run(DispatchAsync);
    }

    /// <summary>How many handler invocations have thrown since start.</summary>
    public long HandlerFailures => Interlocked.Read(ref _handlerFailures);

    /// <inheritdoc />
    /// <exception cref="ObjectDisposedException">The bus was disposed.</exception>
    public ValueTask PublishAsync(EventEnvelope envelope, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        if (!_queue.Writer.TryWrite(new Item(envelope, null)))
        {
            ThrowDisposed();
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public IDisposable Subscribe(Action<EventEnvelope> handler) => Add(handler, null);

    /// <inheritdoc />
    /// <remarks>A batch is what the dispatch loop finds queued without waiting, at most <see cref="MaxBatch"/> envelopes:
    /// one event when the bus keeps up, more as the publisher gets ahead of the handlers.</remarks>
    public IDisposable Subscribe(Action<EventEnvelope> handler, Action onBatchEnd)
    {
        ArgumentNullException.ThrowIfNull(onBatchEnd);
        return Add(handler, onBatchEnd);
    }

    private Subscription Add(Action<EventEnvelope> handler, Action? onBatchEnd)
    {
        ArgumentNullException.ThrowIfNull(handler);
        var subscription = new Subscription(this, handler, onBatchEnd);
        lock (_handlersLock)
        {
            _handlers = [.. _handlers, subscription];
        }

        return subscription;
    }

    /// <summary>
    /// Completes when every envelope published before this call has been handed to every handler.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The bus was disposed.</exception>
    public Task FlushAsync(CancellationToken cancellationToken = default)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_queue.Writer.TryWrite(new Item(null, done)))
        {
            ThrowDisposed();
        }

        return done.Task.WaitAsync(cancellationToken);
    }

    /// <summary>Stops taking events, dispatches those already published, then returns.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
    }

    private static void ThrowDisposed() => throw new ObjectDisposedException(nameof(InProcessEventBus));

    /// <summary>
    /// Most envelopes dispatched before batch ends are called. Bounds the extra latency batching adds to the first
    /// event of a batch (a gateway flushes its connections at the batch end): at ≈ 0.4 µs per delivery, 64 events to
    /// 100 subscribers is ≈ 2.6 ms; a gateway also ends a batch early once it has deferred a few thousand deliveries.
    /// </summary>
    public const int MaxBatch = 64;

    private async Task DispatchAsync()
    {
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            EventEnvelope? last = null;
            var inBatch = 0;
            while (reader.TryRead(out var item))
            {
                if (item.Flush is { } flush)
                {
                    // "Handed to every handler" includes the end of the batch they were handed in.
                    if (inBatch > 0)
                    {
                        EndBatch(last!);
                        inBatch = 0;
                    }

                    flush.TrySetResult();
                    continue;
                }

                var envelope = item.Envelope!;
                last = envelope;
                foreach (var subscription in _handlers)
                {
                    if (subscription.IsDisposed)
                    {
                        continue;
                    }

                    try
                    {
                        subscription.Handler(envelope);
                    }
                    catch (Exception ex)
                    {
                        Interlocked.Increment(ref _handlerFailures);
                        ReportHandlerError(envelope, ex);
                    }
                }

                if (++inBatch == MaxBatch)
                {
                    EndBatch(envelope);
                    inBatch = 0;
                }
            }

            if (inBatch > 0)
            {
                EndBatch(last!);
            }
        }
    }

    /// <summary>Calls the batch-end callback of every current subscription, disposed ones not yet removed included
    /// (work deferred during the batch must be finished). One removed meanwhile is not called: unsubscribing gives up
    /// what it deferred.</summary>
    private void EndBatch(EventEnvelope last)
    {
        foreach (var subscription in _handlers)
        {
            if (subscription.BatchEnd is not { } end)
            {
                continue;
            }

            try
            {
                end();
            }
            catch (Exception ex)
            {
                Interlocked.Increment(ref _handlerFailures);
                ReportHandlerError(last, ex);
            }
        }
    }

    private void ReportHandlerError(EventEnvelope envelope, Exception ex)
    {
        try
        {
            _onHandlerError?.Invoke(envelope, ex);
        }
        catch (Exception)
        {
            // The error sink itself failed; the loop must survive it, and there is nowhere left to report to.
        }
    }

    private void Remove(Subscription subscription)
    {
        lock (_handlersLock)
        {
            var index = Array.IndexOf(_handlers, subscription);
            if (index >= 0)
            {
                _handlers = [.. _handlers.AsSpan(0, index), .. _handlers.AsSpan(index + 1)];
            }
        }
    }

    /// <summary>One queued entry: an envelope to dispatch, or a flush marker to complete.</summary>
    private readonly record struct Item(EventEnvelope? Envelope, TaskCompletionSource? Flush);

    private sealed class Subscription(InProcessEventBus bus, Action<EventEnvelope> handler, Action? batchEnd) : IDisposable
    {
        private int _disposed;

        public Action<EventEnvelope> Handler { get; } = handler;

        public Action? BatchEnd { get; } = batchEnd;

        // Checked by the loop so that no envelope reaches a handler after Dispose returned on another thread
        // while the loop still held the old array... except one already being invoked at that moment.
        public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                bus.Remove(this);
            }
        }
    }
}
