using Gateway.Domain;
using Gateway.Domain.Ports;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;

namespace Gateway.Nats;

/// <summary>
/// The gateway role's bus: live events of the chats with local subscribers, from the streams' republished subjects
/// (<c>live.chat.&lt;p&gt;.&lt;tenant&gt;.&lt;chat&gt;</c>), one core NATS subscription per chat, reference-counted.
/// </summary>
/// <remarks>
/// <para>Order: JetStream republishes in stream order, and one subscription's messages are handled one after another on
/// its own loop, so one chat's events reach the handlers in commit order. Different chats run concurrently; the
/// handlers (ChatRegistry) are thread-safe.</para>
/// <para>Loss: core NATS is at-most-once. A lost live event shows as a hole in the dense seq at the next one and the
/// subscription repairs it from history. A lost LAST event has no later one to reveal it, so both ways a gateway loses
/// live events make the chat re-check its head (<see cref="OnReconnected"/>): a reconnect to NATS (every watched chat)
/// and a message NATS.Net dropped from a full subscription buffer (<see cref="NotifyDropped"/>, that chat).</para>
/// <para>Publishing is not the bus's job in this role: writers append to the log and JetStream republishes.</para>
/// </remarks>
public sealed partial class NatsGatewayBus : IEventBus, IChatInterest, IAsyncDisposable
{
    private readonly INatsConnection _connection;
    private readonly Subjects _subjects;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly Dictionary<(string, string), Watch> _watches = [];
    private volatile Handler[] _handlers = [];

    private readonly TimeSpan _subscribeTimeout;

    /// <summary>Creates the bus over a connection.</summary>
    /// <param name="connection">The NATS connection.</param>
    /// <param name="subjects">The subject layout.</param>
    /// <param name="logger">Where handler and decode failures go.</param>
    /// <param name="subscribeTimeout">How long starting a chat's subscription may take (it needs a round trip to the server;
    /// while NATS is unreachable it fails after this instead of holding the Subscribe). Default 5 s.</param>
    public NatsGatewayBus(INatsConnection connection, Subjects subjects, ILogger logger, TimeSpan? subscribeTimeout = null)
    {
        _connection = connection;
        _subjects = subjects;
        _logger = logger;
        _subscribeTimeout = subscribeTimeout ?? TimeSpan.FromSeconds(5);
    }

    /// <summary>Raised after the connection to NATS was re-established, with every watched chat: live events may have
    /// been lost while it was down.</summary>
    public event Action<string, string>? OnReconnected;

    /// <summary>Raised (tenant, chat, user) for every typing notice of a watched chat, from any gateway including this one.</summary>
    public event Action<string, string, string>? TypingReceived;

    /// <summary>Sends a typing notice to every gateway watching the chat (core NATS, fire and forget, never stored).</summary>
    public void PublishTyping(string tenantId, string chatId, string userId)
    {
        var publish = _connection.PublishAsync(_subjects.Typing(tenantId, chatId), System.Text.Encoding.UTF8.GetBytes(userId));
        if (!publish.IsCompletedSuccessfully)
        {
            _ = ObserveAsync(publish);
        }
    }

    private static async Task ObserveAsync(ValueTask publish)
    {
        try
        {
            await publish.ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Ephemeral: a typing notice lost while NATS is away is not worth anything later.
        }
    }

    /// <inheritdoc />
    /// <exception cref="NotSupportedException">Always: in the gateway role only writers publish, through the log.</exception>
    public ValueTask PublishAsync(EventEnvelope envelope, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("gateways do not publish canonical events; writers append them to the log");

    /// <inheritdoc />
    public IDisposable Subscribe(Action<EventEnvelope> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        return Add(new Handler(handler, null));
    }

    /// <inheritdoc />
    /// <remarks>A batch is what one chat's subscription has buffered when its reader looks (at most
    /// <see cref="MaxBatch"/> messages), so batches grow only when events arrive faster than they are fanned out.</remarks>
    public IDisposable Subscribe(Action<EventEnvelope> handler, Action onBatchEnd)
    {
        ArgumentNullException.ThrowIfNull(handler);
        ArgumentNullException.ThrowIfNull(onBatchEnd);
        return Add(new Handler(handler, onBatchEnd));
    }

    /// <summary>Most log messages of one chat dispatched before the batch ends (the embedded bus uses the same bound).</summary>
    public const int MaxBatch = 64;

    private Unsubscriber Add(Handler handler)
    {
        lock (_lock)
        {
            _handlers = [.. _handlers, handler];
        }

        return new Unsubscriber(this, handler);
    }

    /// <inheritdoc />
    public async ValueTask<IDisposable> WatchAsync(string tenantId, string chatId, CancellationToken cancellationToken = default)
    {
        Watch watch;
        lock (_lock)
        {
            if (!_watches.TryGetValue((tenantId, chatId), out watch!))
            {
                watch = new Watch(this, tenantId, chatId);
                _watches[(tenantId, chatId)] = watch;
                watch.Started = watch.StartAsync();
            }

            watch.RefCount++;
        }

        try
        {
            await watch.Started.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Release(watch);
            throw;
        }

        return new WatchHandle(this, watch);
    }

    /// <summary>Called when NATS.Net reports a reconnect; tells the owner about every watched chat.</summary>
    public void NotifyReconnected()
    {
        (string, string)[] chats;
        lock (_lock)
        {
            chats = [.. _watches.Keys];
        }

        foreach (var (tenant, chat) in chats)
        {
            OnReconnected?.Invoke(tenant, chat);
        }
    }

    /// <summary>Called when NATS.Net dropped a message of a subscription whose buffer was full. A dropped live event of
    /// a watched chat is repaired like a reconnect: the chat re-checks its head, so even a dropped LAST event (which no
    /// later event would reveal as a hole) reaches the subscribers.</summary>
    public void NotifyDropped(string subject)
    {
        // live.chat.<p>.<tenant>.<chat>: ids are [A-Za-z0-9_-], so the dots delimit exactly.
        var parts = subject.Split('.');
        if (parts.Length != 5 || !subject.StartsWith(Subjects.LivePrefix, StringComparison.Ordinal))
        {
            return;
        }

        bool watched;
        lock (_lock)
        {
            watched = _watches.ContainsKey((parts[3], parts[4]));
        }

        if (watched)
        {
            _logger.LogWarning("A live event on {Subject} was dropped (subscription buffer full); re-checking the chat", subject);
            OnReconnected?.Invoke(parts[3], parts[4]);
        }
    }

    /// <summary>Stops every subscription.</summary>
    public async ValueTask DisposeAsync()
    {
        Watch[] all;
        lock (_lock)
        {
            all = [.. _watches.Values];
            _watches.Clear();
        }

        foreach (var w in all)
        {
            await w.StopAsync().ConfigureAwait(false);
        }
    }

    private void Release(Watch watch)
    {
        lock (_lock)
        {
            if (--watch.RefCount > 0)
            {
                return;
            }

            _watches.Remove((watch.TenantId, watch.ChatId));
        }

        _ = watch.StopAsync();
    }

    private void Dispatch(EventEnvelope envelope)
    {
        foreach (var handler in _handlers)
        {
            try
            {
                handler.OnEvent(envelope);
            }
            catch (Exception e)
            {
                _logger.LogError(e, "Event handler failed for {Type} in {Chat}", envelope.EventType, envelope.ChatId);
            }
        }
    }

    private void EndBatch()
    {
        foreach (var handler in _handlers)
        {
            try
            {
                handler.BatchEnd?.Invoke();
            }
            catch (Exception e)
            {
                _logger.LogError(e, "Batch end handler failed");
            }
        }
    }

    /// <summary>A subscription (compared by reference: the same delegates subscribed twice are two subscriptions).</summary>
    private sealed class Handler(Action<EventEnvelope> onEvent, Action? batchEnd)
    {
        public Action<EventEnvelope> OnEvent { get; } = onEvent;

        public Action? BatchEnd { get; } = batchEnd;
    }

    private sealed class WatchHandle(NatsGatewayBus bus, Watch watch) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                bus.Release(watch);
            }
        }
    }

    private sealed class Unsubscriber(NatsGatewayBus bus, Handler handler) : IDisposable
    {
        public void Dispose()
        {
            lock (bus._lock)
            {
                bus._handlers = [.. bus._handlers.Where(h => !ReferenceEquals(h, handler))];
            }
        }
    }
}
