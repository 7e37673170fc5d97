using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Gateway.Domain;
using Gateway.Domain.InProcess;
using Gateway.Protocol;
using Gateway.Server.Auth;
using Gateway.Server.Connections;
using Gateway.Server.Fanout;
using Gateway.Server.Sessions;
using Gateway.Storage.RocksDb;
using Gateway.WebSockets;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gateway.Server.Tests;

/// <summary>
/// Sessions in process over in-memory pipes, on a <see cref="ManualClock"/>: the rate limits and the token timeline
/// move only when a test advances the clock, so a test that checks "after the wait" waits for nothing.
/// </summary>
internal sealed class SessionHarness : IAsyncDisposable
{
    private readonly string _directory;
    private readonly RocksDbChatStore _store;
    private readonly InProcessEventBus _bus;
    private readonly LocalWriteService _writer;
    private readonly ChatRegistry _registry;
    private readonly TimerWheel _wheel;
    private readonly SessionServices _services;
    private readonly List<Peer> _peers = [];

    private SessionHarness(GatewayOptions options)
    {
        Clock = new ManualClock(DateTimeOffset.UtcNow);
        _directory = TestGateway.NewTempDirectory();
        _store = new RocksDbChatStore(_directory);
        _bus = new InProcessEventBus();
        _writer = new LocalWriteService(_store, _bus);
        var metrics = new GatewayMetrics();
        _registry = new ChatRegistry(_bus, metrics);
        var auth = new JwtAuthenticator(
            Microsoft.Extensions.Options.Options.Create(new AuthOptions { SigningKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)) }),
            Microsoft.Extensions.Options.Options.Create(options));
        SigningKey = auth.SigningKey!;
        _wheel = new TimerWheel(TimeSpan.FromMilliseconds(100), Clock);
        _services = new SessionServices(_writer, _store, _writer, _registry, options, metrics, Clock, NullLogger.Instance, auth,
            new UserLimits(options, Clock));
        Options = options;
    }

    public ManualClock Clock { get; }

    public GatewayOptions Options { get; }

    public Microsoft.IdentityModel.Tokens.SymmetricSecurityKey SigningKey { get; }

    public static SessionHarness Create(GatewayOptions options) => new(options);

    public string Token(string userId, TimeSpan lifetime) => JwtAuthenticator.Mint(SigningKey, "t1", userId, lifetime);

    public async Task CreateChatAsync(string chatId, params string[] members) =>
        Assert.True((await _writer.CreateChatAsync("t1", chatId, members)).IsSuccess);

    /// <summary>A connected session of <paramref name="userId"/> whose token expires <paramref name="tokenLifetime"/> from
    /// the clock's now; <paramref name="user"/> shares rate limits between sessions like the connection limiter does.</summary>
    public async Task<Peer> ConnectAsync(string userId, TimeSpan tokenLifetime, ConnectionLimiter.User? user = null)
    {
        var expiresAt = Clock.GetUtcNow().Add(tokenLifetime).ToUnixTimeMilliseconds();
        var peer = new Peer(this, new Principal("t1", userId, expiresAt), user ?? new ConnectionLimiter.User());
        _peers.Add(peer);
        Assert.IsType<HelloFrame>(await peer.ReceiveAsync());
        return peer;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var p in _peers)
        {
            await p.DisposeAsync();
        }

        _registry.Dispose();
        await _writer.DisposeAsync();
        await _bus.DisposeAsync();
        _store.Dispose();
        _wheel.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
    }

    internal sealed class Peer : IAsyncDisposable
    {
        private readonly Pipe _input = new();
        private readonly Pipe _output = new();
        private readonly Task _run;
        private uint _nextRequestId;

        public Peer(SessionHarness owner, Principal principal, ConnectionLimiter.User user)
        {
            var ws = new WebSocketOptions
            {
                MaxMessageBytes = owner.Options.MaxMessageBytes,
                MaxOutboundFrames = owner.Options.MaxOutboundFrames,
                MaxOutboundBytes = owner.Options.MaxOutboundBytes,
                KeepAliveInterval = TimeSpan.Zero,
                Timers = owner._wheel,
            };
            Connection = new WebSocketConnection(new DuplexPipe(_input.Reader, _output.Writer), ws);
            Session = new Session(Connection, principal, "s-" + principal.UserId, owner._services, user);
            Session.Start();
            _run = Connection.RunAsync(Session, CancellationToken.None);
        }

        public WebSocketConnection Connection { get; }

        public Session Session { get; }

        /// <summary>Sends one client frame (masked with a zero key, which leaves the payload as written).</summary>
        public async Task<uint> SendFrameAsync(Action<IBufferWriter<byte>, uint> write)
        {
            var id = ++_nextRequestId;
            var payload = new ArrayBufferWriter<byte>();
            write(payload, id);
            var length = payload.WrittenCount;
            var header = new List<byte> { 0x82 };
            if (length < 126)
            {
                header.Add((byte)(0x80 | length));
            }
            else
            {
                header.Add(0x80 | 126);
                header.Add((byte)(length >> 8));
                header.Add((byte)length);
            }

            header.AddRange(new byte[4]);
            await _input.Writer.WriteAsync(header.ToArray());
            await _input.Writer.WriteAsync(payload.WrittenMemory);
            return id;
        }

        public Task<uint> SendTextAsync(string chatId, string text, string clientMessageId) =>
            SendFrameAsync((w, id) => ClientFrameWriter.WriteSend(w, id, chatId, clientMessageId, "text/plain",
                System.Text.Encoding.UTF8.GetBytes(text), null));

        /// <summary>The next server frame; null after a close frame (its code in <see cref="CloseCode"/>).</summary>
        public async Task<ServerFrame?> ReceiveAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            while (true)
            {
                var read = await _output.Reader.ReadAsync(timeout.Token);
                var buffer = read.Buffer;
                if (TryParse(ref buffer, out var opcode, out var payload))
                {
                    _output.Reader.AdvanceTo(buffer.Start);
                    if (opcode == 0x8)
                    {
                        CloseCode = BinaryPrimitives.ReadUInt16BigEndian(payload);
                        return null;
                    }

                    return ServerFrame.Decode(new ReadOnlySequence<byte>(payload));
                }

                Assert.False(read.IsCompleted, "the server ended the stream without a close frame");
                _output.Reader.AdvanceTo(buffer.Start, buffer.End);
            }
        }

        public async Task<T> ReceiveAsync<T>()
            where T : ServerFrame =>
            Assert.IsType<T>(await ReceiveAsync());

        public ushort? CloseCode { get; private set; }

        public async ValueTask DisposeAsync()
        {
            Connection.Abort();
            await _input.Writer.CompleteAsync();
            try
            {
                await _run.WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (Exception e) when (e is not TimeoutException)
            {
                // the connection was aborted
            }

            Session.Dispose();
        }

        private static bool TryParse(ref ReadOnlySequence<byte> buffer, out byte opcode, out byte[] payload)
        {
            opcode = 0;
            payload = [];
            var reader = new SequenceReader<byte>(buffer);
            if (!reader.TryRead(out var b0) || !reader.TryRead(out var b1))
            {
                return false;
            }

            long length = b1 & 0x7F;
            if (length == 126)
            {
                if (!reader.TryReadBigEndian(out short l16))
                {
                    return false;
                }

                length = (ushort)l16;
            }
            else if (length == 127)
            {
                if (!reader.TryReadBigEndian(out long l64))
                {
                    return false;
                }

                length = l64;
            }

            if (reader.Remaining < length)
            {
                return false;
            }

            opcode = (byte)(b0 & 0x0F);
            payload = reader.UnreadSequence.Slice(0, length).ToArray();
            buffer = buffer.Slice(reader.Position).Slice(length);
            return true;
        }
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}

/// <summary>A clock that moves only when told; its timers fire (inline) as it passes their period.</summary>
internal sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    private readonly Lock _lock = new();
    private readonly List<ManualTimer> _timers = [];
    private long _ticks = TimeSpan.TicksPerHour; // not zero: a timestamp of 0 means "never" to some callers

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => Volatile.Read(ref _ticks);

    public override DateTimeOffset GetUtcNow() => start + TimeSpan.FromTicks(GetTimestamp() - TimeSpan.TicksPerHour);

    /// <summary>Moves the clock on and runs every timer once (a timer wheel catches up on the ticks it missed).</summary>
    public void Advance(TimeSpan by)
    {
        Interlocked.Add(ref _ticks, by.Ticks);
        ManualTimer[] timers;
        lock (_lock)
        {
            timers = [.. _timers];
        }

        foreach (var t in timers)
        {
            t.Fire();
        }
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ManualTimer(this, callback, state);
        lock (_lock)
        {
            _timers.Add(timer);
        }

        return timer;
    }

    private sealed class ManualTimer(ManualClock clock, TimerCallback callback, object? state) : ITimer
    {
        public void Fire() => callback(state);

        public bool Change(TimeSpan dueTime, TimeSpan period) => true;

        public void Dispose()
        {
            lock (clock._lock)
            {
                clock._timers.Remove(this);
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return default;
        }
    }
}
