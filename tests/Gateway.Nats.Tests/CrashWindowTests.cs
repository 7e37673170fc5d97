using System.Collections.Concurrent;
using System.Text;
using Gateway.Domain;
using Gateway.Domain.Ports;
using Gateway.Protocol;
using Gateway.Storage.RocksDb;
using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.Core;

namespace Gateway.Nats.Tests;

/// <summary>
/// The writer's crash windows, reproduced deterministically with the writer's real parts (JetStream log, projector,
/// RocksDB store, write service) composed in the test over a real nats-server: a "crash" is the writer's parts
/// abandoned at a chosen point, and the "restart" opens the same data directory with new parts, as a restarted
/// process would.
/// </summary>
public sealed class CrashWindowTests
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_writer_killed_after_appending_but_before_projecting_never_issues_a_seq_twice_after_restart()
    {
        await using var nats = await NatsServer.StartAsync();
        await using var bed = await Bed.StartAsync(nats.Url);
        var live = await bed.RecordLiveAsync();
        var dir = NatsServer.TempDirectory("writer");

        // Writer 1: the chats exist and have a first message each, all projected.
        var store1 = new RocksDbChatStore(dir);
        var gate = new GatedProjectionStore(store1);
        var writer1 = await bed.StartWriterAsync(store1, gate);
        Assert.True((await writer1.Service.CreateChatAsync("t1", "c1", ["alice", "bob"])).IsSuccess);
        Assert.True((await writer1.Service.CreateChatAsync("t1", "c2", ["alice"])).IsSuccess);
        var acks = new Dictionary<(string Chat, string Id), SendResult>();
        await SendAsync(writer1.Service, acks, "c1", "a-1");
        await SendAsync(writer1.Service, acks, "c2", "b-1");

        // The crash window: the projector receives the next entries from the log but has not written them when the
        // process dies. The appends are acknowledged (the ack is the stored append).
        await writer1.Projector.WaitForAsync("t1", "c1", await bed.LastStreamSeqAsync(), Within, CancellationToken.None);
        gate.Block();
        await SendAsync(writer1.Service, acks, "c1", "a-2");
        var firstInWindow = await bed.LastStreamSeqAsync();
        for (var i = 3; i <= 5; i++)
        {
            await SendAsync(writer1.Service, acks, "c1", $"a-{i}");
        }

        await SendAsync(writer1.Service, acks, "c2", "b-2"); // another chat of the same stream, appended after them
        var lastAppended = await bed.LastStreamSeqAsync();

        // The projector holds a write of the window's first entry (the rest are queued behind it or in flight).
        await gate.Held(firstInWindow).WaitAsync(Within);
        await writer1.CrashAsync();
        store1.Dispose();

        // Restart on the same data directory: the store holds the log only up to before the window.
        using var store2 = new RocksDbChatStore(dir);
        Assert.True(await store2.GetCheckpointAsync(bed.Subjects.StreamName(0)) < lastAppended);
        var writer2 = await bed.StartWriterAsync(store2, store2);
        for (var i = 6; i <= 9; i++)
        {
            await SendAsync(writer2.Service, acks, "c1", $"a-{i}");
        }

        await SendAsync(writer2.Service, acks, "c2", "b-3");

        // A retry of a send from the crash window returns its original.
        var retry = await writer2.Service.SendAsync(Send("c1", "a-3"));
        Assert.True(retry.Duplicate);
        Assert.Equal(acks[("c1", "a-3")].Seq, retry.Seq);
        Assert.Equal(acks[("c1", "a-3")].MessageId, retry.MessageId);

        // One message per seq: in the log itself, in the history store, and on the live subjects.
        var inLog = await bed.ScanLogAsync();
        AssertOnePerSeq(inLog, acks);
        await writer2.Projector.WaitForAsync("t1", "c1", await bed.LastStreamSeqAsync(), Within, CancellationToken.None);
        foreach (var chat in new[] { "c1", "c2" })
        {
            var history = await store2.ReadAfterAsync("t1", chat, 0, 100);
            Assert.Equal(acks.Where(a => a.Key.Chat == chat).OrderBy(a => a.Value.Seq).Select(a => (a.Value.Seq, a.Value.MessageId)),
                history.Select(m => (m.Seq, (string?)m.MessageId)));
        }

        await Poll.UntilAsync(() => live.Count == acks.Count, "every acknowledged message delivered live", Within);
        AssertOnePerSeq([.. live], acks);
        await writer2.CrashAsync();
    }

    [Fact]
    public async Task A_key_reused_for_another_payload_is_a_conflict_in_own_unprojected_appends_in_the_store_and_on_another_writer()
    {
        await using var nats = await NatsServer.StartAsync();
        await using var bed = await Bed.StartAsync(nats.Url);
        using var store = new RocksDbChatStore(NatsServer.TempDirectory("writer"));
        var gate = new GatedProjectionStore(store);
        var writer = await bed.StartWriterAsync(store, gate);
        Assert.True((await writer.Service.CreateChatAsync("t1", "c1", ["alice"])).IsSuccess);
        await writer.Projector.WaitForAsync("t1", "c1", await bed.LastStreamSeqAsync(), Within, CancellationToken.None);

        // The first send stays unprojected: only the writer's own-appends memory knows the key.
        gate.Block();
        var first = await writer.Service.SendAsync(Send("c1", "k"));
        Assert.True(first.IsSuccess, first.ErrorMessage);
        var appended = await bed.LastStreamSeqAsync();
        await gate.Held(appended).WaitAsync(Within);

        async Task AssertAnswersAsync(NatsWriteService service)
        {
            var retry = await service.SendAsync(Send("c1", "k"));
            Assert.True(retry.Duplicate, $"{retry.Error} {retry.ErrorMessage}");
            Assert.Equal((first.Seq, first.MessageId), (retry.Seq, retry.MessageId));
            foreach (var other in new[]
            {
                Send("c1", "k") with { Content = Encoding.UTF8.GetBytes("another text") },
                Send("c1", "k") with { ContentType = "text/markdown" },
                Send("c1", "k") with { ExpiresAt = DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeMilliseconds() },
            })
            {
                var conflict = await service.SendAsync(other);
                Assert.Equal(ErrorCode.IdempotencyConflict, conflict.Error);
            }
        }

        await AssertAnswersAsync(writer.Service);

        // Projected: now the store's idempotency record answers, on this writer and on a second one.
        gate.Release();
        await writer.Projector.WaitForAsync("t1", "c1", appended, Within, CancellationToken.None);
        await AssertAnswersAsync(writer.Service);
        using var store2 = new RocksDbChatStore(NatsServer.TempDirectory("writer"));
        var writer2 = await bed.StartWriterAsync(store2, store2);
        await AssertAnswersAsync(writer2.Service);

        Assert.Equal(appended, await bed.LastStreamSeqAsync()); // no conflict or retry appended anything
        await writer2.CrashAsync();
        await writer.CrashAsync();
    }

    [Fact]
    public async Task A_store_that_claims_more_of_the_log_than_it_holds_refuses_to_issue_a_seq()
    {
        await using var nats = await NatsServer.StartAsync();
        await using var bed = await Bed.StartAsync(nats.Url);
        var acks = new Dictionary<(string Chat, string Id), SendResult>();
        using (var store = new RocksDbChatStore(NatsServer.TempDirectory("writer")))
        {
            var writer = await bed.StartWriterAsync(store, store);
            Assert.True((await writer.Service.CreateChatAsync("t1", "c1", ["alice"])).IsSuccess);
            for (var i = 1; i <= 3; i++)
            {
                await SendAsync(writer.Service, acks, "c1", $"a-{i}");
            }

            await writer.CrashAsync();
        }

        // What the earlier design could leave behind: a position past entries that were never written (an ack floor
        // that moved past them). This store knows the chat and its member, and nothing of its messages.
        using var behind = new RocksDbChatStore(NatsServer.TempDirectory("writer"));
        var last = await bed.LastStreamSeqAsync();
        await behind.ApplyAsync(bed.Subjects.StreamName(0), last,
            [new ProjectionChange(ProjectionChangeKind.MembersAdded, "t1", "c1", null, ["alice"], 0)]);
        var stale = await bed.StartWriterAsync(behind, behind);

        var refused = await stale.Service.SendAsync(Send("c1", "a-4"));
        Assert.Equal(ErrorCode.Unavailable, refused.Error);
        Assert.Equal(last, await bed.LastStreamSeqAsync()); // nothing appended
        await stale.CrashAsync();
    }

    [Fact]
    public async Task A_stalled_projection_reports_unhealthy_and_gateways_read_from_the_other_writer()
    {
        await using var nats = await NatsServer.StartAsync();
        await using var bed = await Bed.StartAsync(nats.Url);
        using var storeA = new RocksDbChatStore(NatsServer.TempDirectory("writer"));
        using var storeB = new RocksDbChatStore(NatsServer.TempDirectory("writer"));
        var gateA = new GatedProjectionStore(storeA);
        var writerA = await bed.StartWriterAsync(storeA, gateA);
        var writerB = await bed.StartWriterAsync(storeB, storeB);
        var acks = new Dictionary<(string Chat, string Id), SendResult>();
        Assert.True((await writerB.Service.CreateChatAsync("t1", "c1", ["alice"])).IsSuccess);
        await SendAsync(writerB.Service, acks, "c1", "a-1");
        Assert.True(writerA.Projector.IsHealthy(out _));

        // A's store stops taking writes; B keeps appending. A's projection falls behind without progress.
        gateA.Block();
        await SendAsync(writerB.Service, acks, "c1", "a-2");
        string? reason = null;
        await Poll.UntilAsync(() => !writerA.Projector.IsHealthy(out reason), "the stalled projection reported unhealthy", Within);
        Assert.Contains("no progress", reason);
        var last = await bed.LastStreamSeqAsync();
        var refusedAt = DateTime.UtcNow;
        await Assert.ThrowsAsync<ProjectionUnavailableException>(() => writerA.Projector.WaitForAsync("t1", "c1", last, Within, CancellationToken.None));
        Assert.True(DateTime.UtcNow - refusedAt < TimeSpan.FromSeconds(1), "an unhealthy projection refuses at once");

        // Both writers serve requests; every catch-up read through a gateway's client is answered (by B).
        await using var rpcA = new WriterRpcServer(bed.Connection, writerA.Service, storeA, NullLogger.Instance);
        await using var rpcB = new WriterRpcServer(bed.Connection, writerB.Service, storeB, NullLogger.Instance);
        await rpcA.StartAsync(CancellationToken.None);
        await rpcB.StartAsync(CancellationToken.None);
        var remote = new RemoteWriter(bed.Connection, bed.Options);
        for (var i = 0; i < 20; i++)
        {
            var (head, page) = await remote.ReadCatchUpAsync("t1", "c1", 0, 10);
            Assert.Equal(2UL, head);
            Assert.Equal([1UL, 2UL], page.Select(m => m.Seq));
        }

        // It stays unhealthy while stalled (no flapping while the watchdog recreates its consumer).
        for (var i = 0; i < 20; i++)
        {
            Assert.False(writerA.Projector.IsHealthy(out _));
            await Task.Delay(50);
        }

        // Once the store takes writes again, A catches up and is healthy.
        gateA.Release();
        await Poll.UntilAsync(() => writerA.Projector.AppliedThrough("t1", "c1") >= last, "the projection caught up", Within);
        Assert.Equal(2UL, await storeA.GetHeadAsync("t1", "c1"));
        await Poll.UntilAsync(() => writerA.Projector.IsHealthy(out _), "the projection healthy again", Within);
        await writerA.CrashAsync();
        await writerB.CrashAsync();
    }

    private static SendMessage Send(string chat, string id) =>
        new("t1", chat, "alice", id, "text/plain", Encoding.UTF8.GetBytes("m " + id), null);

    private static async Task SendAsync(NatsWriteService service, Dictionary<(string, string), SendResult> acks, string chat, string id)
    {
        var result = await service.SendAsync(Send(chat, id));
        Assert.True(result.IsSuccess, $"{chat}/{id}: {result.Error} {result.ErrorMessage}");
        Assert.False(result.Duplicate);
        acks[(chat, id)] = result;
    }

    private static void AssertOnePerSeq(IReadOnlyCollection<ChatMessage> messages, Dictionary<(string Chat, string Id), SendResult> acks)
    {
        foreach (var chat in messages.GroupBy(m => m.ChatId))
        {
            var seqs = chat.Select(m => m.Seq).ToList();
            Assert.Equal(seqs.Distinct().Count(), seqs.Count); // no seq twice
            Frames.AssertDense(seqs.Order(), 1, (ulong)seqs.Count);
        }

        Assert.Equal(acks.Count, messages.Count);
        foreach (var m in messages)
        {
            var ack = acks[(m.ChatId, m.ClientMessageId)];
            Assert.Equal((ack.Seq, ack.MessageId), (m.Seq, (string?)m.MessageId));
        }
    }

    /// <summary>The shared parts: a NATS connection, the streams, and the writers started on it.</summary>
    private sealed class Bed : IAsyncDisposable
    {
        private readonly List<IAsyncDisposable> _owned = [];

        private Bed(NatsConnection connection, NatsOptions options)
        {
            Connection = connection;
            Options = options;
            Subjects = new Subjects(options.Partitions, options.PartitionsPerStream);
            Log = new JetStreamLog(connection, Subjects, options, NullLogger.Instance);
        }

        public NatsConnection Connection { get; }

        public NatsOptions Options { get; }

        public Subjects Subjects { get; }

        public JetStreamLog Log { get; }

        public static async Task<Bed> StartAsync(string url)
        {
            var connection = new NatsConnection(new NatsOpts { Url = url });
            await connection.ConnectAsync();
            var options = new NatsOptions { Url = url, ProjectionCheckMs = 100, ProjectionStallMs = 500, RequestTimeoutMs = 2000 };
            var bed = new Bed(connection, options);
            await bed.Log.EnsureStreamsAsync(CancellationToken.None);
            return bed;
        }

        public async Task<Writer> StartWriterAsync(IChatStore store, IProjectionStore projectionStore)
        {
            var projector = new Projector(Connection, projectionStore, Subjects, "w" + _owned.Count, Options, NullLogger.Instance);
            await projector.StartAsync(CancellationToken.None);
            var service = new NatsWriteService(Log, projector, store, new WriteServiceOptions(), Options, TimeProvider.System, NullLogger.Instance);
            var writer = new Writer(projector, service);
            _owned.Add(writer);
            return writer;
        }

        public async Task<ulong> LastStreamSeqAsync()
        {
            var js = new NATS.Client.JetStream.NatsJSContext(Connection);
            return (await js.GetStreamAsync(Subjects.StreamName(0))).Info.State.LastSeq;
        }

        /// <summary>Every message event in the log, read back entry by entry.</summary>
        public async Task<List<ChatMessage>> ScanLogAsync()
        {
            var result = new List<ChatMessage>();
            var last = await LastStreamSeqAsync();
            for (ulong seq = 1; seq <= last; seq++)
            {
                var data = await Log.GetAsync(Subjects.StreamName(0), seq, CancellationToken.None);
                if (data is not null && WireCodec.DecodeEvent(new System.Buffers.ReadOnlySequence<byte>(data)).Message is { } m)
                {
                    result.Add(m);
                }
            }

            return result;
        }

        /// <summary>Records every message republished on the live subjects (what gateways fan out).</summary>
        public async Task<ConcurrentQueue<ChatMessage>> RecordLiveAsync()
        {
            var seen = new ConcurrentQueue<ChatMessage>();
            var sub = await Connection.SubscribeCoreAsync<byte[]>(Subjects.LivePrefix + "chat.>");
            await Connection.PingAsync();
            _ = Task.Run(async () =>
            {
                await foreach (var msg in sub.Msgs.ReadAllAsync())
                {
                    if (WireCodec.DecodeEvent(new System.Buffers.ReadOnlySequence<byte>(msg.Data ?? [])).Message is { } m)
                    {
                        seen.Enqueue(m);
                    }
                }
            });
            _owned.Add(sub);
            return seen;
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var owned in Enumerable.Reverse(_owned))
            {
                await owned.DisposeAsync();
            }

            await Connection.DisposeAsync();
        }
    }

    /// <summary>A writer's parts. <see cref="CrashAsync"/> abandons them: the projector stops where it is (nothing it has
    /// not written is written later), the write service is dropped with whatever it had cached.</summary>
    private sealed class Writer(Projector projector, NatsWriteService service) : IAsyncDisposable
    {
        public Projector Projector { get; } = projector;

        public NatsWriteService Service { get; } = service;

        public ValueTask CrashAsync() => Projector.DisposeAsync();

        public ValueTask DisposeAsync() => Projector.DisposeAsync();
    }

    /// <summary>A real store whose projection writes can be held (a test double around the real RocksDB store): while
    /// blocked, <see cref="ApplyAsync"/> waits, remembering the highest position it was asked to write.</summary>
    private sealed class GatedProjectionStore(IProjectionStore inner) : IProjectionStore
    {
        private readonly Lock _lock = new();
        private TaskCompletionSource _open = Opened();
        private ulong _held;
        private readonly List<(ulong Position, TaskCompletionSource Reached)> _watchers = [];

        public void Block()
        {
            lock (_lock)
            {
                if (_open.Task.IsCompleted)
                {
                    _open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }
            }
        }

        public void Release()
        {
            lock (_lock)
            {
                _open.TrySetResult();
            }
        }

        /// <summary>Completes once a held write covers <paramref name="position"/>.</summary>
        public Task Held(ulong position)
        {
            lock (_lock)
            {
                var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                if (_held >= position)
                {
                    reached.SetResult();
                }
                else
                {
                    _watchers.Add((position, reached));
                }

                return reached.Task;
            }
        }

        public ValueTask<ulong> GetCheckpointAsync(string log, CancellationToken cancellationToken = default) => inner.GetCheckpointAsync(log, cancellationToken);

        public async ValueTask<ProjectionResult> ApplyAsync(string log, ulong checkpoint, IReadOnlyList<ProjectionChange> changes, CancellationToken cancellationToken = default)
        {
            Task open;
            lock (_lock)
            {
                open = _open.Task;
                if (!open.IsCompleted)
                {
                    _held = Math.Max(_held, checkpoint);
                    foreach (var w in _watchers.Where(w => w.Position <= _held).ToList())
                    {
                        w.Reached.TrySetResult();
                        _watchers.Remove(w);
                    }
                }
            }

            await open.WaitAsync(cancellationToken);
            return await inner.ApplyAsync(log, checkpoint, changes, cancellationToken);
        }

        private static TaskCompletionSource Opened()
        {
            var open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            open.SetResult();
            return open;
        }
    }
}
