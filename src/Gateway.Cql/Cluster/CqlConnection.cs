using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Threading.Channels;
using Gateway.Cql.Protocol;

namespace Gateway.Cql.Cluster;

/// <summary>A request that never reached the wire (connection closed, no free stream id): safe to try elsewhere.</summary>
internal sealed class CqlNotSentException(string message, Exception? inner = null) : CqlException(message, inner);

/// <summary>What a connection needs from its owner's settings.</summary>
internal sealed record CqlConnectionSettings(
    TimeSpan ConnectTimeout,
    TimeSpan RequestTimeout,
    TimeSpan HeartbeatInterval,
    int MaxRequests,
    string? Username = null,
    string? Password = null,
    string? Keyspace = null,
    SslClientAuthenticationOptions? Tls = null)
{
    public static CqlConnectionSettings From(CqlClusterOptions o) =>
        new(o.ConnectTimeout, o.RequestTimeout, o.HeartbeatInterval, Math.Clamp(o.MaxRequestsPerConnection, 1, 32768), o.Username, o.Password, o.Keyspace, o.Tls);
}

/// <summary>
/// One connection to a node: requests multiplexed over stream ids (spec §2.3), frames written by one loop that
/// flushes as many as are queued at once, responses matched to their request by stream id in the read loop.
/// </summary>
internal sealed class CqlConnection : IAsyncDisposable
{
    private static readonly TimeSpan TickPeriod = TimeSpan.FromMilliseconds(25);

    private readonly Socket _socket;
    private readonly Stream _stream;
    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private readonly Channel<(byte[] Buffer, int Length)> _outbox = Channel.CreateUnbounded<(byte[], int)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CqlConnectionSettings _settings;
    private readonly Lock _lock = new();
    private readonly Pending?[] _pending;
    private readonly int[] _free;
    private readonly Timer _timer;
    private readonly CancellationTokenSource _closing = new();
    private int _freeCount;
    private int _inFlight;
    private int _highWater;
    private long _lastReadTicks = Environment.TickCount64;
    private int _heartbeatInFlight;
    private Exception? _closeReason;
    private Task _readLoop = Task.CompletedTask;
    private Task _writeLoop = Task.CompletedTask;

    private CqlConnection(string address, Socket socket, Stream stream, CqlConnectionSettings settings)
    {
        Address = address;
        _socket = socket;
        _stream = stream;
        _settings = settings;
        _reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024));
        _writer = PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 16 * 1024));
        _pending = new Pending?[settings.MaxRequests];
        _free = new int[settings.MaxRequests];

        // Lowest ids on top of the stack, so that a lightly used connection scans only the first slots on each tick.
        for (var i = 0; i < settings.MaxRequests; i++)
        {
            _free[i] = settings.MaxRequests - 1 - i;
        }

        _freeCount = settings.MaxRequests;
        _timer = new Timer(static s => ((CqlConnection)s!).Tick(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>host:port of the node.</summary>
    public string Address { get; }

    /// <summary>The STARTUP options the node announced (SUPPORTED), including Scylla's sharding keys.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Supported { get; private set; } = new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>The Scylla shard that serves this connection (SCYLLA_SHARD); -1 when the node is not sharded.</summary>
    public int Shard { get; private set; } = -1;

    public int InFlight => Volatile.Read(ref _inFlight);

    public bool IsClosed => Volatile.Read(ref _closeReason) is not null;

    /// <summary>Called once when the connection closes, with the reason.</summary>
    public Action<CqlConnection, Exception>? Closed { get; set; }

    /// <summary>Called (on the read loop) with each EVENT frame; the callee must not keep the frame.</summary>
    public Action<CqlEventMessage>? EventReceived { get; set; }

    /// <summary>Opens a connection and runs the handshake: OPTIONS, STARTUP, SASL PLAIN when asked, USE keyspace.</summary>
    public static async Task<CqlConnection> OpenAsync(string address, EndPoint endPoint, string targetHost, CqlConnectionSettings settings, int localPort = 0, CancellationToken cancellationToken = default)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(settings.ConnectTimeout);
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Stream? stream = null;
        CqlConnection? connection = null;
        try
        {
            if (localPort != 0)
            {
                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                socket.Bind(new IPEndPoint(endPoint.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, localPort));
            }

            await socket.ConnectAsync(endPoint, timeout.Token).ConfigureAwait(false);
            stream = new NetworkStream(socket, ownsSocket: true);
            if (settings.Tls is { } tls)
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                stream = ssl;
                var perNode = new SslClientAuthenticationOptions
                {
                    TargetHost = targetHost,
                    ClientCertificates = tls.ClientCertificates,
                    EnabledSslProtocols = tls.EnabledSslProtocols,
                    CertificateRevocationCheckMode = tls.CertificateRevocationCheckMode,
                    RemoteCertificateValidationCallback = tls.RemoteCertificateValidationCallback,
                    LocalCertificateSelectionCallback = tls.LocalCertificateSelectionCallback,
                    CipherSuitesPolicy = tls.CipherSuitesPolicy,
                    EncryptionPolicy = tls.EncryptionPolicy,
                };
                await ssl.AuthenticateAsClientAsync(perNode, timeout.Token).ConfigureAwait(false);
            }

            connection = new CqlConnection(address, socket, stream, settings);
            connection.Start();
            await connection.HandshakeAsync(timeout.Token).ConfigureAwait(false);
            return connection;
        }
        catch (Exception e)
        {
            if (connection is not null)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
            else if (stream is not null)
            {
                await stream.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                socket.Dispose();
            }

            if (e is CqlException)
            {
                throw;
            }

            var why = e is OperationCanceledException && !cancellationToken.IsCancellationRequested ? $"no answer within {settings.ConnectTimeout}" : e.Message;
            throw new CqlConnectionException($"Could not connect to {address}: {why}", e);
        }
    }

    /// <summary>Wraps an already connected stream (tests, or a transport set up by the caller) without a handshake.</summary>
    internal static CqlConnection Attach(string address, Socket socket, Stream stream, CqlConnectionSettings settings)
    {
        var connection = new CqlConnection(address, socket, stream, settings);
        connection.Start();
        return connection;
    }

    /// <summary>
    /// Sends a frame encoded with stream id 0 (patched here) and waits for its answer. A request that times out or is
    /// cancelled keeps its stream id reserved until the late answer arrives or the connection closes, so that answer
    /// can never be taken for the response of a later request.
    /// </summary>
    public Task<CqlResponseFrame> SendAsync(ReadOnlySpan<byte> frame, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var pending = new Pending(Environment.TickCount64 + (long)timeout.TotalMilliseconds);

        // Registered before the request is visible to the read loop, so an answer can never race the registration.
        if (cancellationToken.CanBeCanceled)
        {
            pending.Registration = cancellationToken.UnsafeRegister(static (s, ct) => ((Pending)s!).TrySetCanceled(ct), pending);
        }

        int stream;
        lock (_lock)
        {
            if (_closeReason is { } reason)
            {
                pending.Registration.Dispose();
                throw new CqlNotSentException($"Connection to {Address} is closed: {reason.Message}", reason);
            }

            if (_freeCount == 0)
            {
                pending.Registration.Dispose();
                throw new CqlNotSentException($"Connection to {Address} has all {_pending.Length} stream ids in use");
            }

            stream = _free[--_freeCount];
            _pending[stream] = pending;
            _inFlight++;
            if (stream >= _highWater)
            {
                _highWater = stream + 1;
            }
        }

        var buffer = ArrayPool<byte>.Shared.Rent(frame.Length);
        frame.CopyTo(buffer);
        BinaryPrimitives.WriteInt16BigEndian(buffer.AsSpan(2), (short)stream);
        if (!_outbox.Writer.TryWrite((buffer, frame.Length)))
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return pending.Task;
    }

    /// <summary>Sends a request and turns an ERROR answer into its <see cref="CqlServerException"/>.</summary>
    public async Task<CqlResponseFrame> RequestAsync(ReadOnlyMemory<byte> frame, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var response = await SendAsync(frame.Span, timeout, cancellationToken).ConfigureAwait(false);
        if (response.Opcode == CqlOpcode.Error)
        {
            CqlServerException error;
            try
            {
                var envelope = CqlResponses.ReadEnvelope(response.Flags, response.Span);
                error = CqlResponses.ReadError(response.Span[envelope.MessageStart..], Address);
            }
            finally
            {
                response.Release();
            }

            throw error;
        }

        return response;
    }

    /// <summary>Closes the connection; pending requests fail with a <see cref="CqlConnectionException"/> (or with
    /// <paramref name="reason"/> itself when it is an <see cref="ObjectDisposedException"/>).</summary>
    public void Close(Exception reason)
    {
        Pending?[] failed;
        lock (_lock)
        {
            if (_closeReason is not null)
            {
                return;
            }

            _closeReason = reason;
            failed = new Pending?[_highWater];
            for (var i = 0; i < _highWater; i++)
            {
                failed[i] = _pending[i];
                _pending[i] = null;
            }

            _inFlight = 0;
        }

        _timer.Dispose();
        _outbox.Writer.TryComplete();
        _closing.Cancel();
        var error = reason as ObjectDisposedException as Exception ?? reason as CqlConnectionException ?? new CqlConnectionException($"Connection to {Address} closed: {reason.Message}", reason);
        foreach (var p in failed)
        {
            p?.Abandon(error);
        }

        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception)
        {
            // The peer may have gone already; the socket is disposed below either way.
        }

        _stream.Dispose();
        Closed?.Invoke(this, reason);
    }

    public async ValueTask DisposeAsync()
    {
        Close(new ObjectDisposedException(nameof(CqlConnection), $"Connection to {Address} was disposed"));
        try
        {
            await Task.WhenAll(_readLoop, _writeLoop).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The loops end with the error that closed the connection; it was reported through Close already.
        }

        _closing.Dispose();
    }

    private void Start()
    {
        _readLoop = Task.Run(ReadLoopAsync);
        _writeLoop = Task.Run(WriteLoopAsync);
        _timer.Change(TickPeriod, TickPeriod);
    }

    private async Task HandshakeAsync(CancellationToken cancellationToken)
    {
        using var b = new CqlFrameBuilder(256);
        var timeout = _settings.ConnectTimeout;
        CqlRequests.WriteOptions(b);
        var supported = await RequestAsync(b.WrittenMemory, timeout, cancellationToken).ConfigureAwait(false);
        try
        {
            Supported = CqlResponses.ReadSupported(supported.Span[CqlResponses.ReadEnvelope(supported.Flags, supported.Span).MessageStart..]);
        }
        finally
        {
            supported.Release();
        }

        if (Supported.TryGetValue("SCYLLA_SHARD", out var shard) && shard.Count > 0 && int.TryParse(shard[0], System.Globalization.CultureInfo.InvariantCulture, out var s))
        {
            Shard = s;
        }

        b.Reset();
        CqlRequests.WriteStartup(b);
        var answer = await RequestAsync(b.WrittenMemory, timeout, cancellationToken).ConfigureAwait(false);
        answer.Release();
        if (answer.Opcode == CqlOpcode.Authenticate)
        {
            await AuthenticateAsync(b, answer, timeout, cancellationToken).ConfigureAwait(false);
        }
        else if (answer.Opcode != CqlOpcode.Ready)
        {
            throw new CqlException($"{Address} answered STARTUP with {answer.Opcode}");
        }

        if (_settings.Keyspace is { } keyspace)
        {
            b.Reset();
            CqlRequests.WriteQuery(b, $"USE \"{keyspace.Replace("\"", "\"\"", StringComparison.Ordinal)}\"", [], new CqlQueryParameters(CqlConsistency.One));
            var used = await RequestAsync(b.WrittenMemory, timeout, cancellationToken).ConfigureAwait(false);
            used.Release();
        }
    }

    private async Task AuthenticateAsync(CqlFrameBuilder b, CqlResponseFrame authenticate, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (_settings.Username is null)
        {
            string authenticator;
            try
            {
                authenticator = CqlResponses.ReadAuthenticate(authenticate.Span);
            }
            catch (CqlException)
            {
                authenticator = "unknown";
            }

            throw new CqlException($"{Address} requires authentication ({authenticator}) but CqlClusterOptions.Username is not set");
        }

        // SASL PLAIN finishes in one step; a server that still challenges gets the same credentials again, a bounded number of times.
        for (var round = 0; round < 4; round++)
        {
            b.Reset();
            CqlRequests.WriteAuthResponse(b, _settings.Username, _settings.Password ?? "");
            var answer = await RequestAsync(b.WrittenMemory, timeout, cancellationToken).ConfigureAwait(false);
            answer.Release();
            if (answer.Opcode == CqlOpcode.AuthSuccess)
            {
                return;
            }

            if (answer.Opcode != CqlOpcode.AuthChallenge)
            {
                throw new CqlException($"{Address} answered AUTH_RESPONSE with {answer.Opcode}");
            }
        }

        throw new CqlException($"{Address} kept challenging the SASL PLAIN credentials");
    }

    private async Task WriteLoopAsync()
    {
        var reader = _outbox.Reader;
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                // Copy everything queued into the pipe, then flush once: one syscall for a burst of requests.
                while (reader.TryRead(out var item))
                {
                    _writer.Write(item.Buffer.AsSpan(0, item.Length));
                    ArrayPool<byte>.Shared.Return(item.Buffer);
                }

                var flushed = await _writer.FlushAsync(_closing.Token).ConfigureAwait(false);
                if (flushed.IsCompleted || flushed.IsCanceled)
                {
                    break;
                }
            }
        }
        catch (Exception e)
        {
            Close(new CqlConnectionException($"Writing to {Address} failed: {e.Message}", e));
        }
        finally
        {
            while (reader.TryRead(out var item))
            {
                ArrayPool<byte>.Shared.Return(item.Buffer);
            }
        }
    }

    private async Task ReadLoopAsync()
    {
        try
        {
            while (true)
            {
                var result = await _reader.ReadAsync(_closing.Token).ConfigureAwait(false);
                var buffer = result.Buffer;
                while (TryReadFrame(ref buffer, out var frame))
                {
                    Volatile.Write(ref _lastReadTicks, Environment.TickCount64);
                    Dispatch(frame);
                }

                _reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted || result.IsCanceled)
                {
                    Close(new CqlConnectionException($"{Address} closed the connection"));
                    return;
                }
            }
        }
        catch (Exception e)
        {
            Close(e as CqlConnectionException ?? new CqlConnectionException($"Reading from {Address} failed: {e.Message}", e));
        }
    }

    private static bool TryReadFrame(ref ReadOnlySequence<byte> buffer, out CqlResponseFrame frame)
    {
        frame = default;
        if (buffer.Length < CqlFrame.HeaderLength)
        {
            return false;
        }

        Span<byte> header = stackalloc byte[CqlFrame.HeaderLength];
        buffer.Slice(0, CqlFrame.HeaderLength).CopyTo(header);
        if (header[0] != CqlFrame.ResponseVersion)
        {
            throw new CqlConnectionException($"Unexpected frame version 0x{header[0]:X2} (expected 0x84, spec §2.1)");
        }

        var length = BinaryPrimitives.ReadInt32BigEndian(header[5..]);
        if (length is < 0 or > CqlFrame.MaxBodyLength)
        {
            throw new CqlConnectionException($"Frame body of {length} bytes is out of bounds (spec §2.5)");
        }

        if (buffer.Length < CqlFrame.HeaderLength + length)
        {
            return false;
        }

        var flags = (CqlFrameFlags)header[1];
        if ((flags & CqlFrameFlags.Compression) != 0)
        {
            throw new CqlConnectionException("A compressed frame arrived although STARTUP asked for no compression");
        }

        var body = length == 0 ? [] : ArrayPool<byte>.Shared.Rent(length);
        buffer.Slice(CqlFrame.HeaderLength, length).CopyTo(body);
        frame = new CqlResponseFrame((CqlOpcode)header[4], flags, BinaryPrimitives.ReadInt16BigEndian(header[2..]), body, length);
        buffer = buffer.Slice(CqlFrame.HeaderLength + length);
        return true;
    }

    private void Dispatch(CqlResponseFrame frame)
    {
        if (frame.Stream < 0)
        {
            try
            {
                if (frame.Opcode == CqlOpcode.Event && EventReceived is { } handler)
                {
                    var envelope = CqlResponses.ReadEnvelope(frame.Flags, frame.Span);
                    handler(CqlResponses.ReadEvent(frame.Span[envelope.MessageStart..]));
                }
            }
            catch (CqlException)
            {
                // An event this client does not understand is dropped; it must not take the connection down.
            }
            finally
            {
                frame.Release();
            }

            return;
        }

        Pending? pending = null;
        lock (_lock)
        {
            if (frame.Stream < _pending.Length && _pending[frame.Stream] is { } p)
            {
                pending = p;
                _pending[frame.Stream] = null;
                _free[_freeCount++] = frame.Stream;
                _inFlight--;
            }
        }

        pending?.Registration.Dispose();
        if (pending is null || !pending.TrySetResult(frame))
        {
            // Nobody waits any more (timed out or cancelled): the id is free again now that its answer came.
            frame.Release();
        }
    }

    private void Tick()
    {
        var now = Environment.TickCount64;
        var orphans = 0;
        lock (_lock)
        {
            if (_closeReason is not null)
            {
                return;
            }

            for (var i = 0; i < _highWater; i++)
            {
                if (_pending[i] is { } p)
                {
                    if (!p.Task.IsCompleted && p.Deadline <= now)
                    {
                        // The slot stays taken: the id is reused only after the late answer (or the connection's end).
                        p.Abandon(new CqlTimeoutException($"No answer from {Address} within the request timeout"));
                    }

                    if (p.Task.IsCompleted)
                    {
                        orphans++;
                    }
                }
            }
        }

        if (orphans == _pending.Length)
        {
            // Every stream id waits for an answer nobody wants (timed out or cancelled) and that may never come: no
            // request, not even a heartbeat, can be sent, so the connection would stay in the pool, open and useless,
            // forever. Closing it lets the pool replace it (the integration test against the test peer's Blackhole).
            Close(new CqlConnectionException($"Connection to {Address} closed: all {orphans} stream ids wait for answers that did not come"));
            return;
        }

        if (_settings.HeartbeatInterval > TimeSpan.Zero
            && now - Volatile.Read(ref _lastReadTicks) >= (long)_settings.HeartbeatInterval.TotalMilliseconds
            && Interlocked.CompareExchange(ref _heartbeatInFlight, 1, 0) == 0)
        {
            _ = HeartbeatAsync();
        }
    }

    private async Task HeartbeatAsync()
    {
        try
        {
            using var b = new CqlFrameBuilder(16);
            CqlRequests.WriteOptions(b);
            var answer = await RequestAsync(b.WrittenMemory, _settings.RequestTimeout).ConfigureAwait(false);
            answer.Release();
        }
        catch (CqlTimeoutException e)
        {
            Close(new CqlConnectionException($"Heartbeat to {Address} went unanswered", e));
        }
        catch (Exception)
        {
            // Closed meanwhile, or an ERROR answer: either way the connection has shown it is alive or already gone.
        }
        finally
        {
            Volatile.Write(ref _heartbeatInFlight, 0);
            Volatile.Write(ref _lastReadTicks, Environment.TickCount64);
        }
    }

    /// <summary>A request waiting for its answer.</summary>
    private sealed class Pending(long deadline) : TaskCompletionSource<CqlResponseFrame>(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        public long Deadline { get; } = deadline;

        public CancellationTokenRegistration Registration { get; set; }

        public void Abandon(Exception error) => TrySetException(error);
    }
}
