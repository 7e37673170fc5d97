using System.Diagnostics;
using Gateway.LoadGen.Measurement;
using Gateway.LoadGen.Targets;
using Gateway.Tools.Common;

namespace Gateway.LoadGen.Workers;

/// <summary>
/// One logical client in a worker: survives reconnects, so its sequence checkers see one stream across them.
/// The checkers are touched only by the receive loop of the current connection; a reconnect disposes the old
/// connection (which ends its receive loop) before the new one starts.
/// </summary>
internal sealed class LoadClient
{
    private readonly WorkerCounters _counters;
    private readonly bool _serverSeq;
    private readonly Dictionary<string, SeqChecker> _byRoom = new(StringComparer.Ordinal);
    private readonly Dictionary<int, SeqChecker> _byPublisher = [];

    public LoadClient(ClientSpec spec, WorkerCounters counters, bool serverSeq)
    {
        Spec = spec;
        _counters = counters;
        _serverSeq = serverSeq;
    }

    public ClientSpec Spec { get; }

    public ILoadConnection? Connection { get; private set; }

    public long PublishCounter;

    /// <summary>Connects, authenticates and (optionally) subscribes every room, resuming from the cursors seen so far.</summary>
    public async Task ConnectAsync(ILoadTarget target, Uri endpoint, System.Net.IPEndPoint? local, bool subscribe, CancellationToken ct)
    {
        var connection = target.Create();
        connection.OnMessage = OnMessage;
        connection.OnError = _counters.Error;
        var start = Stopwatch.GetTimestamp();
        try
        {
            await connection.ConnectAsync(endpoint, Spec.User, target.TokenFor(Spec.User), local, ct).ConfigureAwait(false);
            Histograms.RecordSince(_counters.ConnectLatency, start, Stopwatch.GetTimestamp());
            if (subscribe)
            {
                foreach (var room in Spec.Rooms)
                {
                    await SubscribeAsync(connection, room, ct).ConfigureAwait(false);
                }
            }
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        Connection = connection;
    }

    /// <summary>Closes the current connection (gracefully, if it can).</summary>
    public async Task DisconnectAsync()
    {
        if (Connection is { } c)
        {
            Connection = null;
            await c.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The soak's end: reconnect, subscribe every room from its cursor, and count what of 1..head never arrived.
    /// Targets without a server seq have no head: only holes below the highest counter are counted.
    /// </summary>
    public async Task<SeqStats> FinalCheckAsync(ILoadTarget target, Uri endpoint, System.Net.IPEndPoint? local, CancellationToken ct)
    {
        await DisconnectAsync().ConfigureAwait(false);
        long lost = 0;
        var failed = 0;
        if (_serverSeq && Spec.Rooms.Length > 0)
        {
            try
            {
                await ConnectAsync(target, endpoint, local, subscribe: false, ct).ConfigureAwait(false);
                var resumable = (IResumableLoadConnection)Connection!;
                foreach (var room in Spec.Rooms)
                {
                    var checker = Checker(room);
                    var head = await resumable.SubscribeAsync(room, checker.Highest, ct).ConfigureAwait(false);
                    lost += checker.MissingUpTo(head);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                failed = 1;
                _counters.Error("final-catchup:" + e.GetType().Name);
            }
            finally
            {
                await DisconnectAsync().ConfigureAwait(false);
            }
        }
        else
        {
            lost = _byPublisher.Values.Sum(c => c.MissingCount);
        }

        return Stats() with { Lost = lost, CatchUpFailures = failed };
    }

    /// <summary>Totals over this client's streams (loss left at 0: only the final check knows the heads).</summary>
    public SeqStats Stats()
    {
        var all = _byRoom.Values.Concat(_byPublisher.Values).ToList();
        return new SeqStats
        {
            Streams = all.Count,
            Received = all.Sum(c => c.Received),
            Gaps = all.Sum(c => c.Gaps),
            Duplicates = all.Sum(c => c.Duplicates),
            Reordered = all.Sum(c => c.Reordered),
        };
    }

    private async Task SubscribeAsync(ILoadConnection connection, string room, CancellationToken ct)
    {
        if (_serverSeq && connection is IResumableLoadConnection resumable)
        {
            // Reconnect with cursor: the server replays seq > Highest, so a resumed stream has neither holes nor repeats.
            await resumable.SubscribeAsync(room, Checker(room).Highest, ct).ConfigureAwait(false);
        }
        else
        {
            await connection.SubscribeAsync(room, ct).ConfigureAwait(false);
        }
    }

    private SeqChecker Checker(string room)
    {
        if (!_byRoom.TryGetValue(room, out var checker))
        {
            checker = new SeqChecker();
            _byRoom[room] = checker;
        }

        return checker;
    }

    private void OnMessage(string room, ulong seq, ReadOnlySpan<byte> payload)
    {
        var now = Stopwatch.GetTimestamp();
        if (!Payload.TryRead(payload, out var publisher, out var counter, out var intended))
        {
            _counters.Error("foreign-payload");
            return;
        }

        if (seq != 0)
        {
            CheckRoom(room, seq);
        }
        else if (publisher != Spec.Id)
        {
            // Without a server seq, order is per publisher; a publisher's own echo (where a target sends one) is skipped.
            if (!_byPublisher.TryGetValue(publisher, out var checker))
            {
                checker = new SeqChecker();
                _byPublisher[publisher] = checker;
            }

            _counters.Seq(checker.Observe((ulong)counter));
        }

        if (publisher != Spec.Id)
        {
            Interlocked.Increment(ref _counters.Delivered);
            Histograms.RecordSince(_counters.Latency, intended, now);
        }
    }

    private void CheckRoom(string room, ulong seq) => _counters.Seq(Checker(room).Observe(seq));
}
