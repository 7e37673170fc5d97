using Gateway.Domain;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;

namespace Gateway.Nats;

public sealed partial class NatsGatewayBus
{
    /// <summary>One watched chat: its live-event and typing subscriptions and the loops that read them, shared by every
    /// <see cref="WatchAsync"/> of the chat (reference-counted).</summary>
    private sealed class Watch(NatsGatewayBus bus, string tenantId, string chatId)
    {
        private INatsSub<byte[]>? _sub;
        private INatsSub<byte[]>? _typing;
        private Task? _loop;
        private Task? _typingLoop;

        public string TenantId { get; } = tenantId;

        public string ChatId { get; } = chatId;

        public int RefCount { get; set; }

        public Task Started { get; set; } = Task.CompletedTask;

        public async Task StartAsync()
        {
            using var timeout = new CancellationTokenSource(bus._subscribeTimeout);
            try
            {
                _sub = await bus._connection.SubscribeCoreAsync<byte[]>(bus._subjects.Live(TenantId, ChatId), cancellationToken: timeout.Token).ConfigureAwait(false);
                _typing = await bus._connection.SubscribeCoreAsync<byte[]>(bus._subjects.Typing(TenantId, ChatId), cancellationToken: timeout.Token).ConfigureAwait(false);

                // The server handles a connection's protocol in order: once the PONG is back, the SUB is in effect, and
                // every event committed from now on is delivered here.
                await bus._connection.PingAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                await DisposeSubscriptionsAsync().ConfigureAwait(false);
                throw e is OperationCanceledException
                    ? new TimeoutException($"subscribing to chat {ChatId} took over {bus._subscribeTimeout.TotalSeconds} s (NATS unreachable?)", e)
                    : e;
            }

            _loop = Task.Run(ReadAsync);
            _typingLoop = Task.Run(ReadTypingAsync);
        }

        private async Task DisposeSubscriptionsAsync()
        {
            if (_sub is not null)
            {
                await _sub.DisposeAsync().ConfigureAwait(false);
            }

            if (_typing is not null)
            {
                await _typing.DisposeAsync().ConfigureAwait(false);
            }
        }

        public async Task StopAsync()
        {
            try
            {
                await Started.ConfigureAwait(false);
            }
            catch (Exception)
            {
                return; // never started
            }

            await DisposeSubscriptionsAsync().ConfigureAwait(false);
            if (_loop is not null)
            {
                await _loop.ConfigureAwait(false);
            }

            if (_typingLoop is not null)
            {
                await _typingLoop.ConfigureAwait(false);
            }
        }

        private async Task ReadTypingAsync()
        {
            await foreach (var msg in _typing!.Msgs.ReadAllAsync().ConfigureAwait(false))
            {
                if (msg.Data is { Length: > 0 and <= 128 } user)
                {
                    try
                    {
                        bus.TypingReceived?.Invoke(TenantId, ChatId, System.Text.Encoding.UTF8.GetString(user));
                    }
                    catch (Exception e)
                    {
                        bus._logger.LogError(e, "Typing handler failed for {Chat}", ChatId);
                    }
                }
            }
        }

        private async Task ReadAsync()
        {
            var reader = _sub!.Msgs;
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                // Everything buffered so far is one batch (on this thread, no await inside): the gateway flushes each
                // connection once for it.
                var n = 0;
                while (n < MaxBatch && reader.TryRead(out var msg))
                {
                    n++;
                    if (TryDecode(msg) is { } e)
                    {
                        foreach (var envelope in e.ToEnvelopes())
                        {
                            bus.Dispatch(envelope);
                        }
                    }
                }

                bus.EndBatch();
            }
        }

        /// <summary>The event a live message carries, or null (logged) when it cannot be decoded.</summary>
        private LogEvent? TryDecode(NatsMsg<byte[]> msg)
        {
            try
            {
                var e = WireCodec.DecodeEvent(Payload.Of(msg.Data));

                // The fanout continues from the append's span: its context is in the headers the republish
                // copied (the payload's traceId is the writer's, one hop earlier). Looked at only while traced.
                if (GatewayTracing.Enabled && NatsTrace.Read(msg.Headers).TraceParent is { } traceParent)
                {
                    e = e with { TraceId = traceParent };
                }

                return e;
            }
            catch (Exception ex)
            {
                bus._logger.LogError(ex, "Undecodable event on {Subject}", msg.Subject);
                return null;
            }
        }
    }
}
