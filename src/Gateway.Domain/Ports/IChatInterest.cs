namespace Gateway.Domain.Ports;

/// <summary>
/// Tells a bus which chats this gateway has local subscribers for, so that a distributed bus carries only those chats'
/// events here (docs/ARCHITECTURE.md §3: one subscription per chat with local subscribers, reference-counted). The in-process
/// bus carries every event and needs none of this.
/// </summary>
public interface IChatInterest
{
    /// <summary>
    /// Starts receiving the chat's events, if not already. Completes once every event committed after this point will
    /// be delivered to the bus handlers (for NATS: the subscription is confirmed by the server). Dispose the result when
    /// the local subscriber goes; the last one out stops the chat's events.
    /// </summary>
    ValueTask<IDisposable> WatchAsync(string tenantId, string chatId, CancellationToken cancellationToken = default);
}
