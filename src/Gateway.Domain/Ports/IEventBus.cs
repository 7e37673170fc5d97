namespace Gateway.Domain.Ports;

/// <summary>
/// Carries canonical events from the write service to gateways. Events of one chat arrive in publish order.
/// Handlers must not block: they run on the bus's dispatch loop.
/// </summary>
public interface IEventBus
{
    /// <summary>Publishes an event. Only the write service calls this.</summary>
    ValueTask PublishAsync(EventEnvelope envelope, CancellationToken cancellationToken = default);

    /// <summary>Registers a handler for every event; dispose the result to stop.</summary>
    IDisposable Subscribe(Action<EventEnvelope> handler);

    /// <summary>
    /// Registers a handler for every event and a callback that ends a batch: after a run of
    /// <paramref name="handler"/> calls, and before the bus waits for more events, it calls
    /// <paramref name="onBatchEnd"/> on the same thread. A gateway uses it to flush each connection once per batch
    /// instead of once per event, so the batches grow with the load (as nats-server flushes its clients once per
    /// read buffer). The default ends the batch after every event; a bus that dispatches in runs overrides it.
    /// </summary>
    /// <param name="handler">Called for every event.</param>
    /// <param name="onBatchEnd">Called after one or more handler calls, on the thread that made them, also when a handler threw.</param>
    IDisposable Subscribe(Action<EventEnvelope> handler, Action onBatchEnd)
    {
        ArgumentNullException.ThrowIfNull(handler);
        ArgumentNullException.ThrowIfNull(onBatchEnd);
        return Subscribe(e =>
        {
            try
            {
                handler(e);
            }
            finally
            {
                onBatchEnd();
            }
        });
    }
}
