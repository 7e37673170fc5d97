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
}
