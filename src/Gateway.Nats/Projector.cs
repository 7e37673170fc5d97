using System.Threading.Channels;
using Gateway.Domain;
using Gateway.Domain.Ports;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace Gateway.Nats;

/// <summary>
/// Writes committed log events into this writer's history store (ARCHITECTURE.md §4): one durable pull consumer per
/// stream, events applied in stream order, idempotently, and acknowledged only after the store write is durable.
/// </summary>
/// <remarks>
/// <para>Batching: events are taken from the consumer as they arrive; whatever is waiting is applied together (runs
/// of messages as one synced store batch) and acknowledged with one ack of the last (<c>AckPolicy.All</c>). So one
/// fsync covers a burst, and an idle stream costs no latency.</para>
/// <para>Idempotency: a redelivered event (crash between store write and ack) finds its message already at or below the
/// chat's head and is skipped; membership changes are idempotent by nature.</para>
/// <para>The consumers have no filter subject: each covers its whole stream. (nats-server 2.9 takes one
/// <c>FilterSubject</c> only and silently ignores <c>filter_subjects</c>, so a consumer must never rely on the latter.)</para>
/// <para><see cref="WaitForAsync"/> lets the write service wait until a chat's state in the store reflects the log up
/// to a given stream sequence: the watermark is the last applied stream sequence per stream.</para>
/// </remarks>
public sealed class Projector : IAsyncDisposable
{
    private const int MaxBatch = 512;

    private readonly INatsConnection _connection;
    private readonly IChatStore _store;
    private readonly Subjects _subjects;
    private readonly string _durable;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private int _disposed;
    private readonly Watermark[] _watermarks;
    private readonly List<Task> _loops = [];

    /// <summary>Creates the projector; <see cref="StartAsync"/> creates the consumers and starts applying.</summary>
    public Projector(INatsConnection connection, IChatStore store, Subjects subjects, string nodeId, ILogger logger)
    {
        _connection = connection;
        _store = store;
        _subjects = subjects;
        _durable = "projector-" + nodeId;
        _logger = logger;
        _watermarks = new Watermark[subjects.StreamCount];
        for (var i = 0; i < _watermarks.Length; i++)
        {
            _watermarks[i] = new Watermark();
        }
    }

    /// <summary>Creates (or reuses) the durable consumers and starts one apply loop per stream.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var js = new NatsJSContext((NatsConnection)_connection);
        for (var i = 0; i < _subjects.StreamCount; i++)
        {
            var consumer = await js.CreateOrUpdateConsumerAsync(_subjects.StreamName(i), new ConsumerConfig(_durable)
            {
                AckPolicy = ConsumerConfigAckPolicy.All,
                DeliverPolicy = ConsumerConfigDeliverPolicy.All,
                AckWait = TimeSpan.FromSeconds(30),
                MaxAckPending = 10_000,
            }, cancellationToken).ConfigureAwait(false);

            // Everything at or below the ack floor is already in the store (acked after the write).
            var watermark = _watermarks[i];
            watermark.Advance(consumer.Info.AckFloor.StreamSeq);
            _loops.Add(Task.Run(() => RunAsync(consumer, watermark, _stop.Token), CancellationToken.None));
        }
    }

    /// <summary>Waits until every event of the chat's stream up to <paramref name="streamSeq"/> is in the store.</summary>
    /// <exception cref="TimeoutException">Not within <paramref name="timeout"/>.</exception>
    public Task WaitForAsync(string tenantId, string chatId, ulong streamSeq, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var index = _subjects.Partition(tenantId, chatId) / _subjects.PartitionsPerStream;
        return _watermarks[index].WaitAsync(streamSeq, timeout, cancellationToken);
    }

    /// <summary>Stops the apply loops (events not yet acknowledged are redelivered to the next run).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(_loops).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }

    private async Task RunAsync(INatsJSConsumer consumer, Watermark watermark, CancellationToken cancellationToken)
    {
        var inbox = Channel.CreateBounded<INatsJSMsg<byte[]>>(new BoundedChannelOptions(MaxBatch * 4) { SingleReader = true, SingleWriter = true });
        var apply = Task.Run(() => ApplyLoopAsync(inbox.Reader, watermark, cancellationToken), CancellationToken.None);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                // Short pull expiries with heartbeats: after a broker restart the pending pull requests are gone, and a
                // fresh one goes out within ~2 s instead of the default 30 s (the store would lag the log that long).
                var opts = new NatsJSConsumeOpts { MaxMsgs = MaxBatch, Expires = TimeSpan.FromSeconds(2), IdleHeartbeat = TimeSpan.FromSeconds(1) };
                await foreach (var msg in consumer.ConsumeAsync<byte[]>(opts: opts, cancellationToken: cancellationToken).ConfigureAwait(false))
                {
                    await inbox.Writer.WriteAsync(msg, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                // NATS down or the consumer gone: NATS.Net reconnects by itself; start consuming again shortly.
                _logger.LogWarning(e, "Projector consume loop on {Stream} failed; retrying", consumer.Info.StreamName);
                await Task.Delay(500, cancellationToken).ConfigureAwait(false);
            }
        }

        inbox.Writer.TryComplete();
        await apply.ConfigureAwait(false);
    }

    private async Task ApplyLoopAsync(ChannelReader<INatsJSMsg<byte[]>> inbox, Watermark watermark, CancellationToken cancellationToken)
    {
        var batch = new List<INatsJSMsg<byte[]>>(MaxBatch);
        try
        {
            while (await inbox.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (batch.Count < MaxBatch && inbox.TryRead(out var msg))
                {
                    batch.Add(msg);
                }

                // A store failure must not skip events: retry the same batch until it applies (or we stop).
                while (true)
                {
                    try
                    {
                        await ApplyAsync(batch, cancellationToken).ConfigureAwait(false);
                        break;
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        _logger.LogError(e, "Projector could not apply {Count} events; retrying", batch.Count);
                        await Task.Delay(500, cancellationToken).ConfigureAwait(false);
                    }
                }

                var last = batch[^1];
                try
                {
                    await last.AckAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // Not acknowledged: redelivered later and skipped as already applied.
                    _logger.LogWarning(e, "Projector ack failed");
                }

                if (last.Metadata is { } meta)
                {
                    watermark.Advance(meta.Sequence.Stream);
                }

                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private async Task ApplyAsync(List<INatsJSMsg<byte[]>> batch, CancellationToken cancellationToken)
    {
        var heads = new Dictionary<(string, string), ulong>();
        var run = new List<ChatMessage>();
        foreach (var msg in batch)
        {
            LogEvent e;
            try
            {
                e = WireCodec.DecodeEvent(Payload.Of(msg.Data));
            }
            catch (Exception ex) when (ex is MessagePack.MessagePackSerializationException or InvalidOperationException or EndOfStreamException)
            {
                // Only writers publish here; a malformed event is a bug or a foreign publisher. It cannot be applied,
                // and must not stop the projection of everything after it.
                _logger.LogError(ex, "Projector skips an undecodable event at stream seq {Seq}", msg.Metadata?.Sequence.Stream);
                continue;
            }

            if (e.Kind == LogEventKind.MessageCreated)
            {
                var key = (e.TenantId, e.ChatId);
                if (!heads.TryGetValue(key, out var head))
                {
                    head = await _store.GetHeadAsync(e.TenantId, e.ChatId, cancellationToken).ConfigureAwait(false);
                }

                if (e.Message!.Seq <= head)
                {
                    continue; // redelivered: already in the store
                }

                heads[key] = e.Message.Seq;
                run.Add(e.Message);
                continue;
            }

            // Membership changes are ordered with the messages around them: flush the run first.
            await FlushAsync(run, cancellationToken).ConfigureAwait(false);
            if (e.Kind == LogEventKind.MembersAdded)
            {
                await _store.AddMembersAsync(e.TenantId, e.ChatId, [.. e.Users], e.OccurredAt, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                foreach (var user in e.Users)
                {
                    await _store.RemoveMemberAsync(e.TenantId, e.ChatId, user, cancellationToken).ConfigureAwait(false);
                }
            }
        }

        await FlushAsync(run, cancellationToken).ConfigureAwait(false);
    }

    private async Task FlushAsync(List<ChatMessage> run, CancellationToken cancellationToken)
    {
        if (run.Count > 0)
        {
            await _store.AppendAsync(run, cancellationToken).ConfigureAwait(false);
            run.Clear();
        }
    }

    /// <summary>The last applied stream sequence of one stream, and waiters for it to pass a value.</summary>
    private sealed class Watermark
    {
        private readonly Lock _lock = new();
        private ulong _value;
        private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Advance(ulong value)
        {
            TaskCompletionSource changed;
            lock (_lock)
            {
                if (value <= _value)
                {
                    return;
                }

                _value = value;
                changed = _changed;
                _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            changed.TrySetResult();
        }

        public async Task WaitAsync(ulong target, TimeSpan timeout, CancellationToken cancellationToken)
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(timeout);
            while (true)
            {
                Task changed;
                lock (_lock)
                {
                    if (_value >= target)
                    {
                        return;
                    }

                    changed = _changed.Task;
                }

                try
                {
                    await changed.WaitAsync(deadline.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new TimeoutException($"the history store did not reach log position {target} within {timeout.TotalMilliseconds} ms");
                }
            }
        }
    }
}
