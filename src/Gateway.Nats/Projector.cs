using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Threading.Channels;
using Gateway.Domain;
using Gateway.Domain.Ports;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace Gateway.Nats;

/// <summary>
/// Writes the commit log into this writer's history store, in log order, exactly once per entry, whatever crashed.
/// </summary>
/// <remarks>
/// <para><b>Position in the store, not in the broker.</b> The store keeps, per stream, the stream sequence of the last
/// entry it applied, written in the same atomic, synced batch as the entries (<see cref="IProjectionStore"/>). On start,
/// and whenever anything looks wrong, the projector reads the stream again from exactly the next sequence through an
/// ephemeral, unacknowledged consumer. Nothing depends on redelivery or on a durable consumer's ack floor. (The design
/// this replaces acked the last entry of each batch of a durable consumer with <c>AckPolicy.All</c>: after a writer crash,
/// the entries the dead process had received were redelivered only after the ack wait, while later entries flowed at
/// once, so the projection either wedged on a chat whose next seq had not come back, or acked past entries it never
/// applied — and a restarted writer then read a stale chat head and appended a seq the log already held.)</para>
/// <para><b>Gaps.</b> Entries must arrive with consecutive consumer sequences and stream sequences. A message at or below
/// the position is ignored (already applied). A stream sequence above the next one is a gap: the consumer is dropped
/// and recreated from the next sequence; only when a fresh consumer's very first entry still lies beyond it is the
/// gap real (the log no longer holds those entries: <c>MaxAge</c> or a purge), logged and counted. A gap is never
/// skipped on the word of a consumer that may have lost entries in flight.</para>
/// <para><b>Liveness.</b> A watchdog reads each stream's last sequence every <see cref="NatsOptions.ProjectionCheckMs"/>.
/// Behind the log with no progress for <see cref="ResetAfter"/> → the consumer is recreated (after a broker restart,
/// an ephemeral consumer is simply gone). Behind by more than <see cref="NatsOptions.ProjectionMaxLag"/> entries, or
/// with no progress for <see cref="NatsOptions.ProjectionStallMs"/>, the projection is unhealthy: <c>/readyz</c> says 503
/// and reads that would wait for it fail at once with <see cref="ProjectionUnavailableException"/>, so the gateways
/// retry on another writer.</para>
/// <para><b>Batching.</b> Whatever has arrived is applied together (up to <see cref="MaxBatch"/> entries, one synced
/// store write), so one fsync covers a burst and an idle stream costs no latency.</para>
/// </remarks>
public sealed class Projector : IAsyncDisposable
{
    private const int MaxBatch = 512;

    /// <summary>How often a follower reads the shared checkpoint while a read waits for it.</summary>
    private const int FollowPollMs = 3;
    private static readonly Meter Counters = new("Gateway");
    private static readonly Counter<long> AppliedCounter = Counters.CreateCounter<long>("gateway.projector.applied", "{event}", "Log entries written into this writer's history store");
    private static readonly Counter<long> ResetCounter = Counters.CreateCounter<long>("gateway.projector.resets", "{reset}", "Projection consumers recreated from the store's position, tagged by reason");
    private static readonly Counter<long> StaleCounter = Counters.CreateCounter<long>("gateway.projector.stale", "{message}", "Messages whose seq was already in the store (a log that holds a seq twice)");
    private static readonly Counter<long> MissingCounter = Counters.CreateCounter<long>("gateway.projector.missing", "{event}", "Log entries gone from the stream before they were projected (MaxAge, purge)");

    private readonly INatsConnection _connection;
    private readonly IProjectionStore _store;
    private readonly Subjects _subjects;
    private readonly string _nodeId;
    private readonly NatsOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly StreamProjection[] _streams;
    private readonly List<Task> _loops = [];
    private readonly Meter _meter = new("Gateway");
    private readonly string _leaseOwner;
    private int _disposed;

    /// <summary>Creates the projector; <see cref="StartAsync"/> reads the store's positions and starts applying.</summary>
    public Projector(INatsConnection connection, IProjectionStore store, Subjects subjects, string nodeId, NatsOptions options, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(subjects);
        _connection = connection;
        _store = store;
        _subjects = subjects;
        _nodeId = nodeId;
        _options = options;
        _logger = logger;
        // Unique per process: two writers started with the same NodeId must not share a lease.
        _leaseOwner = $"{nodeId}/{Guid.NewGuid():N}";
        _streams = new StreamProjection[subjects.StreamCount];
        for (var i = 0; i < _streams.Length; i++)
        {
            _streams[i] = new StreamProjection(subjects.StreamName(i));
        }

        _meter.CreateObservableGauge("gateway.projector.lag", ObserveLag, "{event}", "Log entries not yet in this writer's history store, per stream");
    }

    /// <summary>How long the projection may be behind the log without progress before its consumer is recreated.</summary>
    public TimeSpan ResetAfter => TimeSpan.FromMilliseconds(Math.Max(_options.ProjectionCheckMs * 2, 1000));

    /// <summary>Reads each stream's position from the store and starts one reader, applier and watchdog per stream.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var js = new NatsJSContext((NatsConnection)_connection);
        foreach (var stream in _streams)
        {
            var position = await _store.GetCheckpointAsync(stream.Name, cancellationToken).ConfigureAwait(false);
            stream.Watermark.Advance(position);
            stream.ProgressAt = Environment.TickCount64;
            await DeleteLegacyConsumerAsync(js, stream.Name, cancellationToken).ConfigureAwait(false);
            _logger.LogInformation("Projection of {Stream} resumes after stream seq {Position}", stream.Name, position);
            _loops.Add(_store is ISharedProjectionStore shared
                ? Task.Run(() => LeaseAsync(js, stream, shared, _stop.Token), CancellationToken.None)
                : Task.Run(() => RunAsync(js, stream, _stop.Token), CancellationToken.None));
            _loops.Add(Task.Run(() => WatchAsync(js, stream, _stop.Token), CancellationToken.None));
        }

        if (_connection is NatsConnection nats)
        {
            // After a reconnect the broker may have restarted, and with it every ephemeral consumer is gone.
            nats.ConnectionOpened += (_, _) =>
            {
                foreach (var stream in _streams)
                {
                    stream.RequestReset();
                }

                return ValueTask.CompletedTask;
            };
        }
    }

    /// <summary>True while every stream's projection keeps up with the log (see the remarks); otherwise false with a
    /// reason naming the stream.</summary>
    public bool IsHealthy(out string? reason)
    {
        foreach (var stream in _streams)
        {
            if (Unhealthy(stream) is { } why)
            {
                reason = why;
                return false;
            }
        }

        reason = null;
        return true;
    }

    /// <summary>The stream seq up to which the chat's stream is in the store.</summary>
    public ulong AppliedThrough(string tenantId, string chatId) =>
        _streams[_subjects.Partition(tenantId, chatId) / _subjects.PartitionsPerStream].Watermark.Value;

    /// <summary>Waits until every event of the chat's stream up to <paramref name="streamSeq"/> is in the store.</summary>
    /// <exception cref="ProjectionUnavailableException">The projection is unhealthy (it would not get there in time).</exception>
    /// <exception cref="TimeoutException">Not within <paramref name="timeout"/>.</exception>
    public Task WaitForAsync(string tenantId, string chatId, ulong streamSeq, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var stream = _streams[_subjects.Partition(tenantId, chatId) / _subjects.PartitionsPerStream];
        if (stream.Watermark.Value >= streamSeq)
        {
            return Task.CompletedTask;
        }

        if (Unhealthy(stream) is { } reason)
        {
            return Task.FromException(new ProjectionUnavailableException(reason));
        }

        return stream.Watermark.WaitAsync(streamSeq, timeout, cancellationToken);
    }

    /// <summary>Stops reading and applying; what was not applied is read again from the store's position next time.</summary>
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
        _meter.Dispose();
    }

    private string? Unhealthy(StreamProjection stream)
    {
        var applied = stream.Watermark.Value;
        var last = Volatile.Read(ref stream.LogLast);
        if (stream.LogError is { } error && Environment.TickCount64 - stream.LogErrorSince > _options.ProjectionStallMs)
        {
            return $"projection of {stream.Name}: the log's position is unknown ({error})";
        }

        if (last <= applied)
        {
            return null;
        }

        var lag = last - applied;
        if (lag > (ulong)_options.ProjectionMaxLag)
        {
            return $"projection of {stream.Name} is {lag} entries behind the log (limit Nats:ProjectionMaxLag = {_options.ProjectionMaxLag})";
        }

        var stalledMs = Environment.TickCount64 - Volatile.Read(ref stream.ProgressAt);
        return stalledMs > _options.ProjectionStallMs
            ? $"projection of {stream.Name} is {lag} entries behind the log and made no progress for {stalledMs} ms (limit Nats:ProjectionStallMs = {_options.ProjectionStallMs})"
            : null;
    }

    private IEnumerable<Measurement<long>> ObserveLag()
    {
        foreach (var stream in _streams)
        {
            var last = Volatile.Read(ref stream.LogLast);
            var applied = stream.Watermark.Value;
            yield return new Measurement<long>(last > applied ? (long)(last - applied) : 0, new KeyValuePair<string, object?>("stream", stream.Name));
        }
    }

    /// <summary>Reads the stream from the position after the last applied entry into the apply queue, recreating the
    /// consumer on a gap, an error or a reset request.</summary>
    private async Task RunAsync(NatsJSContext js, StreamProjection stream, CancellationToken cancellationToken)
    {
        var inbox = Channel.CreateBounded<(ulong StreamSeq, byte[]? Data, string? TraceParent)>(new BoundedChannelOptions(MaxBatch * 4) { SingleReader = true, SingleWriter = true });
        var apply = Task.Run(() => ApplyLoopAsync(inbox.Reader, stream, cancellationToken), CancellationToken.None);

        // The next stream sequence to read: everything before it is applied or queued for applying, in order.
        var next = stream.Watermark.Value + 1;
        while (!cancellationToken.IsCancellationRequested)
        {
            using var reset = stream.NewResetScope(cancellationToken);
            string? consumerName = null;
            try
            {
                var name = $"projector-{Guid.NewGuid():N}"[..26];
                var consumer = await js.CreateOrUpdateConsumerAsync(stream.Name, new ConsumerConfig
                {
                    Name = name,
                    Description = "chatgw projector of writer " + _nodeId,
                    DeliverPolicy = ConsumerConfigDeliverPolicy.ByStartSequence,
                    OptStartSeq = next,
                    AckPolicy = ConsumerConfigAckPolicy.None,
                    MemStorage = true,
                    NumReplicas = 1,
                    InactiveThreshold = TimeSpan.FromSeconds(30),
                }, reset.Token).ConfigureAwait(false);
                consumerName = name;

                ulong expectedConsumerSeq = 1;
                var fresh = true;
                var opts = new NatsJSConsumeOpts { MaxMsgs = MaxBatch, Expires = TimeSpan.FromSeconds(2), IdleHeartbeat = TimeSpan.FromSeconds(1) };
                await foreach (var msg in consumer.ConsumeAsync<byte[]>(opts: opts, cancellationToken: reset.Token).ConfigureAwait(false))
                {
                    if (msg.Metadata is not { } meta)
                    {
                        continue; // not a stream message (a status the client did not consume)
                    }

                    if (meta.Sequence.Consumer != expectedConsumerSeq)
                    {
                        // The consumer lost something in flight: start again from what we have.
                        ResetCounter.Add(1, new KeyValuePair<string, object?>("reason", "consumer_gap"));
                        _logger.LogWarning("Projection of {Stream}: consumer seq {Got} instead of {Expected}; re-reading from stream seq {Next}",
                            stream.Name, meta.Sequence.Consumer, expectedConsumerSeq, next);
                        break;
                    }

                    expectedConsumerSeq++;
                    var seq = meta.Sequence.Stream;
                    if (seq < next)
                    {
                        continue;
                    }

                    if (seq > next)
                    {
                        if (!fresh)
                        {
                            ResetCounter.Add(1, new KeyValuePair<string, object?>("reason", "stream_gap"));
                            _logger.LogWarning("Projection of {Stream}: stream seq {Got} after {Last}; re-reading from {Next}", stream.Name, seq, next - 1, next);
                            break;
                        }

                        // A fresh consumer asked to start at `next` began later: the log no longer holds those entries.
                        MissingCounter.Add((long)(seq - next), new KeyValuePair<string, object?>("stream", stream.Name));
                        _logger.LogError("Projection of {Stream}: stream seqs {From}..{To} are no longer in the log (MaxAge or purge) and were never projected here",
                            stream.Name, next, seq - 1);
                    }

                    fresh = false;
                    // The entry's trace context (its append's span), read only while something listens.
                    var traceParent = GatewayTracing.Enabled ? NatsTrace.Read(msg.Headers).TraceParent : null;
                    await inbox.Writer.WriteAsync((seq, msg.Data, traceParent), cancellationToken).ConfigureAwait(false);
                    next = seq + 1;
                }

                // The consumer ended (a gap, or it is gone): a new one, but not in a tight loop.
                await PauseAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (OperationCanceledException)
            {
                // A reset was requested (watchdog or reconnect): recreate the consumer from `next`.
            }
            catch (Exception e)
            {
                ResetCounter.Add(1, new KeyValuePair<string, object?>("reason", "error"));
                _logger.LogWarning(e, "Projection of {Stream}: reading the log failed; re-reading from stream seq {Next}", stream.Name, next);
                await PauseAsync(cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                if (consumerName is not null)
                {
                    _ = DeleteQuietlyAsync(js, stream.Name, consumerName);
                }
            }
        }

        inbox.Writer.TryComplete();
        await apply.ConfigureAwait(false);
    }

    /// <summary>
    /// Shared store: projects the stream while this writer holds its lease, and otherwise follows the checkpoint that the
    /// holder writes, so that reads here still wait for the position they began at.
    /// </summary>
    /// <remarks>Correctness does not rest on the lease: every projected write carries its log position as write timestamp
    /// (<see cref="ISharedProjectionStore"/>), so two writers projecting at once, for a moment after a takeover, write the
    /// same values and the later entry wins. The lease only keeps the work to one writer.</remarks>
    private async Task LeaseAsync(NatsJSContext js, StreamProjection stream, ISharedProjectionStore store, CancellationToken cancellationToken)
    {
        var duration = store.LeaseDuration;
        var renewEvery = TimeSpan.FromMilliseconds(Math.Max(duration.TotalMilliseconds / 3, 100));
        var follower = Task.Run(() => FollowAsync(stream, store, cancellationToken), CancellationToken.None);
        CancellationTokenSource? projecting = null;
        Task? runner = null;
        var heldAt = long.MinValue;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                bool held;
                try
                {
                    held = await store.TryHoldLeaseAsync(stream.Name, _leaseOwner, duration, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    // Unknown: keep projecting only while the lease we last confirmed is surely still ours.
                    held = Environment.TickCount64 - heldAt < duration.TotalMilliseconds * 2 / 3;
                    _logger.LogWarning(e, "Projection of {Stream}: the lease could not be renewed", stream.Name);
                }

                if (held && runner is null)
                {
                    // Pick up where the previous holder's checkpoint stands.
                    stream.Watermark.Advance(await store.GetCheckpointAsync(stream.Name, cancellationToken).ConfigureAwait(false));
                    stream.Owned = true;
                    projecting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    var token = projecting.Token;
                    runner = Task.Run(() => RunAsync(js, stream, token), CancellationToken.None);
                    _logger.LogInformation("Projection of {Stream}: this writer holds the lease and projects from stream seq {Position}", stream.Name, stream.Watermark.Value);
                }
                else if (!held && runner is not null)
                {
                    _logger.LogWarning("Projection of {Stream}: the lease went to another writer; following its checkpoint", stream.Name);
                    await StopProjectingAsync().ConfigureAwait(false);
                }

                if (held)
                {
                    heldAt = Environment.TickCount64;
                }

                await Task.Delay(renewEvery, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            var wasHolding = runner is not null;
            await StopProjectingAsync().ConfigureAwait(false);
            if (wasHolding)
            {
                try
                {
                    // Hand over at once instead of after the lease runs out.
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                    await store.ReleaseLeaseAsync(stream.Name, _leaseOwner, timeout.Token).ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    _logger.LogInformation(e, "Projection of {Stream}: the lease was not released; it runs out by itself", stream.Name);
                }
            }

            await follower.ConfigureAwait(false);
        }

        async Task StopProjectingAsync()
        {
            stream.Owned = false;
            if (projecting is null)
            {
                return;
            }

            await projecting.CancelAsync().ConfigureAwait(false);
            try
            {
                await runner!.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }

            projecting.Dispose();
            projecting = null;
            runner = null;
        }
    }

    /// <summary>While another writer projects the stream, moves the watermark with the checkpoint it writes: every
    /// <see cref="NatsOptions.ProjectionCheckMs"/>, and every few milliseconds while a read here waits for it.</summary>
    private async Task FollowAsync(StreamProjection stream, ISharedProjectionStore store, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                if (!stream.Owned)
                {
                    var before = stream.Watermark.Value;
                    var position = await store.GetCheckpointAsync(stream.Name, cancellationToken).ConfigureAwait(false);
                    stream.Watermark.Advance(position);
                    if (position > before)
                    {
                        Volatile.Write(ref stream.ProgressAt, Environment.TickCount64);
                    }
                }

                if (stream.Watermark.HasWaiters)
                {
                    await Task.Delay(FollowPollMs, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await stream.Watermark.Wanted.WaitAsync(TimeSpan.FromMilliseconds(_options.ProjectionCheckMs), cancellationToken).ConfigureAwait(false);
                }
            }
            catch (TimeoutException)
            {
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                _logger.LogWarning(e, "Projection of {Stream}: reading the shared checkpoint failed", stream.Name);
                await PauseAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static async Task PauseAsync(CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(250, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task ApplyLoopAsync(ChannelReader<(ulong StreamSeq, byte[]? Data, string? TraceParent)> inbox, StreamProjection stream, CancellationToken cancellationToken)
    {
        var batch = new List<(ulong StreamSeq, byte[]? Data, string? TraceParent)>(MaxBatch);
        var changes = new List<ProjectionChange>(MaxBatch);
        try
        {
            while (await inbox.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (batch.Count < MaxBatch && inbox.TryRead(out var entry))
                {
                    batch.Add(entry);
                }

                Decode(batch, changes, stream.Name);
                var checkpoint = batch[^1].StreamSeq;

                // One span per applied batch, the child of its first traced entry and linked to every traced one.
                using var span = GatewayTracing.Enabled ? GatewayTracing.StartBatch(GatewayTracing.Project, ActivityKind.Consumer, batch.Select(static b => b.TraceParent)) : null;
                span?.SetTag(GatewayTracing.MessagingSystemTag, "nats").SetTag(GatewayTracing.DestinationTag, stream.Name);

                // A store failure must not skip entries: retry the same batch until it applies (or we stop). The
                // watchdog sees no progress meanwhile and reports the projection unhealthy.
                while (true)
                {
                    try
                    {
                        var result = await _store.ApplyAsync(stream.Name, checkpoint, changes, cancellationToken).ConfigureAwait(false);
                        AppliedCounter.Add(batch.Count);
                        if (result.Stale > 0)
                        {
                            StaleCounter.Add(result.Stale);
                            _logger.LogWarning("Projection of {Stream}: {Count} messages up to stream seq {Seq} repeat a seq already stored; the first one stays",
                                stream.Name, result.Stale, checkpoint);
                        }

                        break;
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        _logger.LogError(e, "Projection of {Stream} could not apply stream seqs {From}..{To}; retrying", stream.Name, batch[0].StreamSeq, checkpoint);
                        await Task.Delay(500, cancellationToken).ConfigureAwait(false);
                    }
                }

                stream.Watermark.Advance(checkpoint);
                Volatile.Write(ref stream.ProgressAt, Environment.TickCount64);
                batch.Clear();
                changes.Clear();
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private void Decode(List<(ulong StreamSeq, byte[]? Data, string? TraceParent)> batch, List<ProjectionChange> changes, string streamName)
    {
        foreach (var (seq, data, _) in batch)
        {
            LogEvent e;
            try
            {
                e = WireCodec.DecodeEvent(Payload.Of(data));
            }
            catch (Exception ex) when (ex is MessagePack.MessagePackSerializationException or InvalidOperationException or EndOfStreamException)
            {
                // Only writers publish here; a malformed entry is a bug or a foreign publisher. It cannot be applied,
                // and must not stop the projection of everything after it.
                _logger.LogError(ex, "Projection of {Stream} skips an undecodable entry at stream seq {Seq}", streamName, seq);
                continue;
            }

            changes.Add(e.Kind switch
            {
                LogEventKind.MessageCreated => ProjectionChange.Of(e.Message!),
                LogEventKind.MembersAdded => new ProjectionChange(ProjectionChangeKind.MembersAdded, e.TenantId, e.ChatId, null, e.Users, e.OccurredAt),
                _ => new ProjectionChange(ProjectionChangeKind.MembersRemoved, e.TenantId, e.ChatId, null, e.Users, e.OccurredAt),
            });
        }
    }

    /// <summary>Learns the stream's last sequence periodically: the lag, the health, and the trigger to recreate a
    /// consumer that stopped delivering.</summary>
    private async Task WatchAsync(NatsJSContext js, StreamProjection stream, CancellationToken cancellationToken)
    {
        var lastApplied = stream.Watermark.Value;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_options.ProjectionCheckMs, cancellationToken).ConfigureAwait(false);
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(_options.RequestTimeoutMs);
                var info = await js.GetStreamAsync(stream.Name, cancellationToken: timeout.Token).ConfigureAwait(false);
                Volatile.Write(ref stream.LogLast, info.Info.State.LastSeq);
                stream.LogError = null;

                var applied = stream.Watermark.Value;
                if (applied >= info.Info.State.LastSeq)
                {
                    // Caught up: a stall is counted from the moment it falls behind, not from the last entry applied.
                    Volatile.Write(ref stream.ProgressAt, Environment.TickCount64);
                    lastApplied = applied;
                }
                else if (applied != lastApplied)
                {
                    lastApplied = applied;
                }
                else if (info.Info.State.LastSeq > applied
                         && Environment.TickCount64 - Math.Max(Volatile.Read(ref stream.ProgressAt), stream.ResetAt) > ResetAfter.TotalMilliseconds)
                {
                    ResetCounter.Add(1, new KeyValuePair<string, object?>("reason", "stalled"));
                    _logger.LogWarning("Projection of {Stream} made no progress for {Ms} ms while behind the log; re-reading from the store's position",
                        stream.Name, (long)ResetAfter.TotalMilliseconds);
                    stream.RequestReset();
                    stream.ResetAt = Environment.TickCount64; // the next one after another wait, not at every check
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                if (stream.LogError is null)
                {
                    stream.LogErrorSince = Environment.TickCount64;
                }

                stream.LogError = e.Message;
            }
        }
    }

    private async Task DeleteLegacyConsumerAsync(NatsJSContext js, string streamName, CancellationToken cancellationToken)
    {
        // Earlier versions kept a durable consumer per writer; its ack floor is not what this store holds.
        try
        {
            await js.DeleteConsumerAsync(streamName, "projector-" + _nodeId, cancellationToken).ConfigureAwait(false);
            _logger.LogInformation("Deleted the durable consumer projector-{NodeId} of an earlier version on {Stream}", _nodeId, streamName);
        }
        catch (NatsJSApiException)
        {
            // Not there: the usual case.
        }
    }

    private static async Task DeleteQuietlyAsync(NatsJSContext js, string streamName, string consumer)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await js.DeleteConsumerAsync(streamName, consumer, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // It expires by itself after its inactivity threshold.
        }
    }

    /// <summary>One stream's projection state.</summary>
    private sealed class StreamProjection(string name)
    {
        private readonly Lock _lock = new();
        private CancellationTokenSource? _reset;

        public string Name { get; } = name;

        public Watermark Watermark { get; } = new();

        /// <summary>The stream's last sequence as last read by the watchdog.</summary>
        public ulong LogLast;

        /// <summary>Shared store: true while this writer holds the stream's lease and projects it.</summary>
        public volatile bool Owned;

        /// <summary>When the watermark last moved or the watchdog last found it caught up, <see cref="Environment.TickCount64"/>.</summary>
        public long ProgressAt;

        public string? LogError { get; set; }

        /// <summary>When the watchdog last recreated the consumer (only the watchdog reads and writes it).</summary>
        public long ResetAt { get; set; }

        public long LogErrorSince { get; set; }

        public CancellationTokenSource NewResetScope(CancellationToken stop)
        {
            lock (_lock)
            {
                _reset = CancellationTokenSource.CreateLinkedTokenSource(stop);
                return _reset;
            }
        }

        public void RequestReset()
        {
            lock (_lock)
            {
                try
                {
                    _reset?.Cancel();
                }
                catch (ObjectDisposedException)
                {
                    // That reader already ended.
                }
            }
        }
    }

    /// <summary>The last applied stream sequence of one stream, and waiters for it to pass a value.</summary>
    private sealed class Watermark
    {
        private readonly Lock _lock = new();
        private ulong _value;
        private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private TaskCompletionSource _wanted = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _waiters;

        public ulong Value
        {
            get
            {
                lock (_lock)
                {
                    return _value;
                }
            }
        }

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

        /// <summary>True while a reader waits for a position not reached yet.</summary>
        public bool HasWaiters => Volatile.Read(ref _waiters) > 0;

        /// <summary>Completes when a reader starts waiting (a follower then reads the shared checkpoint at once).</summary>
        public Task Wanted
        {
            get
            {
                lock (_lock)
                {
                    return _wanted.Task;
                }
            }
        }

        public async Task WaitAsync(ulong target, TimeSpan timeout, CancellationToken cancellationToken)
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(timeout);
            Interlocked.Increment(ref _waiters);
            try
            {
                while (true)
                {
                    Task changed;
                    TaskCompletionSource wanted;
                    lock (_lock)
                    {
                        if (_value >= target)
                        {
                            return;
                        }

                        changed = _changed.Task;
                        wanted = _wanted;
                        _wanted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    }

                    wanted.TrySetResult();
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
            finally
            {
                Interlocked.Decrement(ref _waiters);
            }
        }
    }
}

/// <summary>This writer's projection is unhealthy (far behind the log, or stalled): a read that needs it is refused at
/// once, so the caller retries on another writer instead of waiting out a timeout.</summary>
public sealed class ProjectionUnavailableException : TimeoutException
{
    /// <summary>Creates the exception.</summary>
    public ProjectionUnavailableException()
    {
    }

    /// <summary>Creates the exception with a reason.</summary>
    public ProjectionUnavailableException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a reason and a cause.</summary>
    public ProjectionUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
