using System.Diagnostics;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Gateway.Domain;
using Gateway.Domain.InProcess;
using Gateway.Server;
using Gateway.Server.Auth;
using Gateway.Server.Fanout;
using Gateway.Server.Sessions;
using Gateway.Storage.RocksDb;
using Gateway.WebSockets;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gateway.Benchmarks.Support;

/// <summary>
/// The real outbound path in one process, wired like <c>GatewayHost</c>: RocksDB store in a temp directory, in-process
/// bus, <see cref="LocalWriteService"/> for membership, <see cref="ChatRegistry"/>, and N <see cref="Session"/>s on
/// <see cref="WebSocketConnection"/>s over in-memory pipes. Each connection subscribes to one shared chat by sending a
/// real masked Subscribe frame, so every subscription goes through membership, catch-up and the switch to live.
/// A <see cref="ServerFrameDrain"/> per connection reads the output pipe the way a socket would.
/// </summary>
internal sealed class DeliveryFixture : IAsyncDisposable
{
    public const string Tenant = "bench";
    public const string Chat = "general";

    /// <summary>
    /// Flow control of <see cref="DeliverNext"/>: every <see cref="CheckEvery"/> deliveries, if any subscriber's drain is
    /// more than <see cref="MaxLag"/> messages behind, wait until every one is within <see cref="ResumeLag"/>. A
    /// subscriber can thus be at most 512 + 64 = 576 frames behind, which is queue plus pipe, below the 1024-frame
    /// outbound queue: an unfair scheduler slows the producer down instead of tripping the slow-consumer close (4002).
    /// </summary>
    private const int CheckEvery = 64;
    private const int MaxLag = 512;
    private const int ResumeLag = 64;

    private static readonly TimeSpan SetupTimeout = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan StallTimeout = TimeSpan.FromSeconds(20);

    private readonly string _directory;
    private readonly RocksDbChatStore _store;
    private readonly InProcessEventBus _bus;
    private readonly LocalWriteService _writer;
    private readonly GatewayMetrics _metrics;
    private readonly ChatRegistry _registry;
    private readonly ChatMessage _message;
    private readonly Peer[] _peers;
    private ulong _seq;
    private long _expected;
    private long _received;

    private DeliveryFixture(int connections, int contentBytes)
    {
        _directory = Path.Combine(Path.GetTempPath(), "gateway-bench-" + Guid.NewGuid().ToString("N"));
        _store = new RocksDbChatStore(_directory);
        _bus = new InProcessEventBus();
        _writer = new LocalWriteService(_store, _bus);
        _metrics = new GatewayMetrics();
        _registry = new ChatRegistry(_bus, _metrics);
        _peers = new Peer[connections];

        var content = new byte[contentBytes];
        content.AsSpan().Fill((byte)'x');
        _message = new ChatMessage(Tenant, Chat, 0, "01JD6V4Q8ZK3M2N5P7R9S1T3V5", "user-0000",
            1_732_000_000_000, "text/plain", content, null, "6f1c2d9e-3b7a-4e55-9c10-8a2b4d6e0f13");
    }

    /// <summary>Subscribers.</summary>
    public int Connections => _peers.Length;

    /// <summary>Messages delivered so far.</summary>
    public long Delivered => (long)_seq;

    /// <summary>Builds the system and waits until all <paramref name="connections"/> subscriptions are live.</summary>
    public static async Task<DeliveryFixture> StartAsync(int connections, int contentBytes = 100)
    {
        var fixture = new DeliveryFixture(connections, contentBytes);
        try
        {
            await fixture.ConnectAllAsync().ConfigureAwait(false);
            return fixture;
        }
        catch
        {
            await fixture.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Fans the next committed message (seq + 1) out to every subscriber through <see cref="ChatRegistry.Deliver"/>,
    /// exactly as the bus handler does. If a drain falls far behind, waits for the drains (see <see cref="MaxLag"/>),
    /// so a long run measures sustained throughput instead of filling queues until the slow-consumer policy fires.
    /// </summary>
    public void DeliverNext()
    {
        // The record is immutable and a new one per delivery would put ~100 B of benchmark-made garbage in the numbers;
        // the registry reads the message synchronously and keeps nothing, so the seq is bumped in place instead.
        SeqField(_message) = ++_seq;
        _registry.Deliver(_message);
        _expected += _peers.Length;
        if (_seq % CheckEvery == 0 && MostBehind() > MaxLag)
        {
            var spinner = default(SpinWait);
            long started = Stopwatch.GetTimestamp();
            while (MostBehind() > ResumeLag)
            {
                Yield(ref spinner, started);
            }
        }
    }

    /// <summary>
    /// Fans <paramref name="events"/> consecutive messages out in one pass, as the bus does when events queue up
    /// (<see cref="ChatRegistry.DeliverDeferred"/> each, then one <see cref="ChatRegistry.EndPass"/>): every writer is
    /// woken once and flushes all of them together. Same flow control as <see cref="DeliverNext"/>.
    /// </summary>
    public void DeliverNextPass(int events)
    {
        for (var i = 0; i < events; i++)
        {
            SeqField(_message) = ++_seq;
            _registry.DeliverDeferred(_message, committedAt: 0);
            _expected += _peers.Length;
        }

        ChatRegistry.EndPass();
        if (MostBehind() > MaxLag)
        {
            var spinner = default(SpinWait);
            long started = Stopwatch.GetTimestamp();
            while (MostBehind() > ResumeLag)
            {
                Yield(ref spinner, started);
            }
        }
    }

    /// <summary>Delivers one message and returns once every subscriber's drain has read it from its pipe.</summary>
    public void DeliverNextAndWait()
    {
        SeqField(_message) = ++_seq;
        _registry.Deliver(_message);
        _expected += _peers.Length;
        WaitForLag(0);
    }

    /// <summary>Waits until every delivered message reached every drain.</summary>
    public void WaitAllReceived() => WaitForLag(0);

    /// <summary>Throws unless every connection is healthy and received exactly what was delivered.</summary>
    public void Verify()
    {
        WaitAllReceived();
        foreach (var peer in _peers)
        {
            if (peer.Connection.CloseStatus is not null || peer.Drain.CloseFrames != 0)
            {
                throw new InvalidOperationException(
                    $"A connection closed during the run (status {peer.Connection.CloseStatus}): the numbers are not valid.");
            }

            if (peer.Drain.Messages != Delivered)
            {
                throw new InvalidOperationException($"A subscriber received {peer.Drain.Messages} of {Delivered} messages.");
            }
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        var ends = new List<Task>();
        foreach (var peer in _peers)
        {
            if (peer is null)
            {
                continue;
            }

            peer.Connection.Abort();
            await peer.Input.Writer.CompleteAsync().ConfigureAwait(false);
            ends.Add(peer.Run);
            ends.Add(peer.Drain.Completion);
        }

        try
        {
            await Task.WhenAll(ends).WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Console.Error.WriteLine("// DeliveryFixture: connections did not end within 30 s");
        }

        foreach (var peer in _peers)
        {
            peer?.Session.Dispose();
        }

        _registry.Dispose();
        await _writer.DisposeAsync().ConfigureAwait(false);
        await _bus.DisposeAsync().ConfigureAwait(false);
        _store.Dispose();
        _metrics.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp directory is harmless.
        }
    }

    private async Task ConnectAllAsync()
    {
        var members = new string[_peers.Length];
        for (int i = 0; i < members.Length; i++)
        {
            members[i] = $"user-{i:D4}";
        }

        var created = await _writer.CreateChatAsync(Tenant, Chat, members).ConfigureAwait(false);
        if (!created.IsSuccess)
        {
            throw new InvalidOperationException($"CreateChat failed: {created.Error} {created.ErrorMessage}");
        }

        var options = new GatewayOptions();
        // Sessions here never see a token; a fixed HS256 key keeps the authenticator off the disk.
        var auth = new Gateway.Server.Auth.JwtAuthenticator(
            Microsoft.Extensions.Options.Options.Create(new AuthOptions { SigningKey = Convert.ToBase64String(new byte[32]) }),
            Microsoft.Extensions.Options.Options.Create(options));
        var services = new SessionServices(_writer, _store, _writer, _registry, options, _metrics, TimeProvider.System,
            NullLogger.Instance, auth, new UserLimits(options, TimeProvider.System));
        var wsOptions = new Gateway.WebSockets.WebSocketOptions
        {
            MaxMessageBytes = options.MaxMessageBytes,
            MaxOutboundFrames = options.MaxOutboundFrames,
            MaxOutboundBytes = options.MaxOutboundBytes,
            // No keep-alive pings: an idle-timer tick would add frames the benchmark did not ask for.
            KeepAliveInterval = TimeSpan.Zero,
        };

        // Tokens valid for a day: long enough for any run, short enough for Task.Delay's ~49-day limit.
        long expiresAt = DateTimeOffset.UtcNow.AddDays(1).ToUnixTimeMilliseconds();
        var subscribe = ClientFrames.Mask(ClientFrames.SubscribeFromStart(1, Chat));
        for (int i = 0; i < _peers.Length; i++)
        {
            var peer = new Peer(this, wsOptions, new Principal(Tenant, members[i], expiresAt), services, i);
            _peers[i] = peer;
            await peer.Input.Writer.WriteAsync(subscribe).ConfigureAwait(false);
        }

        var deadline = DateTime.UtcNow + SetupTimeout;
        while (_peers.Any(p => p.Drain.CaughtUp == 0))
        {
            if (DateTime.UtcNow > deadline || _peers.Any(p => p.Run.IsCompleted))
            {
                int live = _peers.Count(p => p.Drain.CaughtUp > 0);
                throw new InvalidOperationException($"Only {live} of {_peers.Length} subscriptions went live.");
            }

            await Task.Delay(10).ConfigureAwait(false);
        }
    }

    private void WaitForLag(long lag)
    {
        var spinner = default(SpinWait);
        long started = Stopwatch.GetTimestamp();
        while (_expected - Volatile.Read(ref _received) > lag)
        {
            Yield(ref spinner, started);
        }
    }

    /// <summary>Messages the slowest subscriber's drain has not read yet.</summary>
    private long MostBehind()
    {
        long delivered = Delivered;
        long behind = 0;
        foreach (var peer in _peers)
        {
            behind = Math.Max(behind, delivered - peer.Drain.Messages);
        }

        return behind;
    }

    private void Yield(ref SpinWait spinner, long started)
    {
        // Never Sleep(1): a millisecond nap would dwarf the work being measured; yield to the writer pumps instead.
        spinner.SpinOnce(sleep1Threshold: -1);

        // A stuck run (e.g. a connection closed as a slow consumer) must fail, not spin forever.
        if (spinner.Count % 1024 == 0 && Stopwatch.GetElapsedTime(started) > StallTimeout)
        {
            ThrowStalled();
        }
    }

    private void ThrowStalled()
    {
        long min = _peers.Min(p => p.Drain.Messages);
        long max = _peers.Max(p => p.Drain.Messages);
        int closed = _peers.Count(p => p.Connection.CloseStatus is not null);
        var codes = string.Join(",", _peers.Where(p => p.Connection.CloseStatus is not null).Select(p => p.Connection.CloseStatus).Distinct());
        throw new InvalidOperationException(
            $"Delivery stalled: delivered {Delivered} to {_peers.Length}, per-subscriber received min {min} max {max}, " +
            $"{closed} connections closed (codes {codes}), queued frames max {_peers.Max(p => p.Connection.FramesQueued)}.");
    }

    private void OnMessages(long count) => Interlocked.Add(ref _received, count);

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "<Seq>k__BackingField")]
    private static extern ref ulong SeqField(ChatMessage message);

    private sealed class Peer
    {
        public Peer(DeliveryFixture owner, Gateway.WebSockets.WebSocketOptions wsOptions, Principal principal,
            SessionServices services, int index)
        {
            // Kestrel's defaults: 4 KiB blocks from a shared block pool, 1 MiB of unread input, 64 KiB of unflushed
            // output; resume at half.
            Input = new Pipe(new PipeOptions(BlockMemoryPool.Instance, pauseWriterThreshold: 1024 * 1024,
                resumeWriterThreshold: 512 * 1024, minimumSegmentSize: BlockMemoryPool.BlockSize, useSynchronizationContext: false));
            Output = new Pipe(new PipeOptions(BlockMemoryPool.Instance, pauseWriterThreshold: 64 * 1024,
                resumeWriterThreshold: 32 * 1024, minimumSegmentSize: BlockMemoryPool.BlockSize, useSynchronizationContext: false));
            Connection = new WebSocketConnection(new DuplexPipe(Input.Reader, Output.Writer), wsOptions);
            Session = new Session(Connection, principal, $"bench-{index}", services);
            Drain = new ServerFrameDrain(Output.Reader, owner.OnMessages);
            Session.Start();
            Run = Connection.RunAsync(Session, CancellationToken.None);
        }

        public Pipe Input { get; }

        public Pipe Output { get; }

        public WebSocketConnection Connection { get; }

        public Session Session { get; }

        public ServerFrameDrain Drain { get; }

        public Task Run { get; }
    }
}
