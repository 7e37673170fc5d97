using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography.X509Certificates;
using Gateway.Protocol;
using Xunit;

namespace Gateway.TestUtilities;

/// <summary>How <see cref="WsClient"/> connects: Origin header, local source address, trusted TLS certificate.</summary>
public sealed record ConnectSettings(string? Origin = null, IPAddress? LocalAddress = null, X509Certificate2? TrustedCertificate = null);

/// <summary>
/// A thin test client over <see cref="ClientWebSocket"/> that sends and receives raw protocol frames — deliberately not
/// the client library, so tests see exactly what the server puts on the wire. It can also bind its socket to a chosen
/// loopback address (127.0.0.2 is a different source IP on Linux), send an Origin, trust one exact TLS certificate, and
/// report the HTTP status of a refused upgrade.
/// </summary>
public sealed class WsClient : IAsyncDisposable
{
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);
    private readonly ClientWebSocket _socket;
    private readonly HttpMessageInvoker _invoker;
    private readonly byte[] _buffer = new byte[1 << 20];
    private uint _nextRequestId;

    private WsClient(ClientWebSocket socket, HttpMessageInvoker invoker)
    {
        _socket = socket;
        _invoker = invoker;
    }

    public ClientWebSocket Socket => _socket;

    public HelloFrame Hello { get; private set; } = null!;

    /// <summary>Connects and reads Hello; throws if the upgrade is refused.</summary>
    public static async Task<WsClient> ConnectAsync(Uri uri, string? token, ConnectSettings? settings = null)
    {
        var (socket, invoker) = Create(token, settings ?? new ConnectSettings());
        var client = new WsClient(socket, invoker);
        try
        {
            using var cts = new CancellationTokenSource(DefaultTimeout);
            await socket.ConnectAsync(uri, invoker, cts.Token);
            client.Hello = await client.ReceiveAsync<HelloFrame>();
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>Attempts an upgrade that the server must refuse; returns the HTTP status and the Retry-After header (if any).</summary>
    public static async Task<(int Status, string? RetryAfter)> ConnectRefusedAsync(Uri uri, string? token, ConnectSettings? settings = null)
    {
        var (socket, invoker) = Create(token, settings ?? new ConnectSettings());
        using (socket)
        using (invoker)
        {
            using var cts = new CancellationTokenSource(DefaultTimeout);
            await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(uri, invoker, cts.Token));
            string? retryAfter = null;
            if (socket.HttpResponseHeaders is { } headers && headers.TryGetValue("Retry-After", out var values))
            {
                retryAfter = values.FirstOrDefault();
            }

            return ((int)socket.HttpStatusCode, retryAfter);
        }
    }

    /// <summary>Connects until the server accepts, for a slot that is freed asynchronously (after the server's handler ends).</summary>
    public static async Task<WsClient> ConnectEventuallyAsync(Uri uri, string? token, ConnectSettings? settings = null,
        TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? DefaultTimeout);
        while (true)
        {
            try
            {
                return await ConnectAsync(uri, token, settings);
            }
            catch (WebSocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50); // 20 attempts a second: within the default handshake rate, 20/s per address
            }
        }
    }

    private static (ClientWebSocket Socket, HttpMessageInvoker Invoker) Create(string? token, ConnectSettings settings)
    {
        var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol(ProtocolConstants.SubProtocol);
        socket.Options.CollectHttpResponseDetails = true;
        if (token is not null)
        {
            socket.Options.SetRequestHeader("Authorization", "Bearer " + token);
        }

        if (settings.Origin is not null)
        {
            socket.Options.SetRequestHeader("Origin", settings.Origin);
        }

        var handler = new SocketsHttpHandler();
        if (settings.LocalAddress is { } local)
        {
            handler.ConnectCallback = async (context, ct) =>
            {
                var s = new Socket(local.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    s.Bind(new IPEndPoint(local, 0));
                    await s.ConnectAsync(context.DnsEndPoint, ct);
                    return new NetworkStream(s, ownsSocket: true);
                }
                catch
                {
                    s.Dispose();
                    throw;
                }
            };
        }

        if (settings.TrustedCertificate is { } trusted)
        {
            // Trust exactly this certificate, whatever the chain and name checks say: it is self-signed for the test.
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                certificate is not null && string.Equals(certificate.GetCertHashString(), trusted.Thumbprint, StringComparison.OrdinalIgnoreCase);
        }

        return (socket, new HttpMessageInvoker(handler));
    }

    public uint NextRequestId() => ++_nextRequestId;

    public async Task SendFrameAsync(Action<IBufferWriter<byte>> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        write(buffer);
        using var cts = new CancellationTokenSource(DefaultTimeout);
        await _socket.SendAsync(buffer.WrittenMemory, WebSocketMessageType.Binary, true, cts.Token);
    }

    public async Task<uint> SubscribeAsync(params ChatCursor[] cursors)
    {
        var id = NextRequestId();
        await SendFrameAsync(w => ClientFrameWriter.WriteSubscribe(w, id, cursors));
        return id;
    }

    public async Task<uint> SendTextAsync(string chatId, string text, string? clientMessageId = null)
    {
        var id = NextRequestId();
        await SendFrameAsync(w => ClientFrameWriter.WriteSend(w, id, chatId, clientMessageId ?? Guid.NewGuid().ToString("N"), "text/plain",
            System.Text.Encoding.UTF8.GetBytes(text), null));
        return id;
    }

    /// <summary>The next frame; null when the server closed (see <see cref="CloseStatus"/>).</summary>
    public async Task<ServerFrame?> ReceiveAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        var count = 0;
        while (true)
        {
            var result = await _socket.ReceiveAsync(_buffer.AsMemory(count), cts.Token);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                // Answer the close as a real client does, so the server's close handshake completes at once. A server that
                // FAILED the connection (1002, 1009, …) may drop TCP right after its close frame (RFC 6455 §7.1.7), and
                // then our echo meets a reset: the close status is already recorded, which is all a caller asks for.
                try
                {
                    await _socket.CloseOutputAsync(_socket.CloseStatus ?? WebSocketCloseStatus.NormalClosure, null, cts.Token);
                }
                catch (WebSocketException) when (_socket.CloseStatus is not null)
                {
                }

                return null;
            }

            Assert.Equal(WebSocketMessageType.Binary, result.MessageType);
            count += result.Count;
            if (result.EndOfMessage)
            {
                return ServerFrame.Decode(new ReadOnlySequence<byte>(_buffer, 0, count))
                    ?? throw new InvalidOperationException("unknown frame type");
            }
        }
    }

    public async Task<T> ReceiveAsync<T>(TimeSpan? timeout = null)
        where T : ServerFrame
    {
        var frame = await ReceiveAsync(timeout);
        return frame as T ?? throw new Xunit.Sdk.XunitException($"expected {typeof(T).Name}, got {frame?.ToString() ?? "close"}");
    }

    /// <summary>Skips frames until one of type <typeparamref name="T"/> matches (other subscriptions' traffic, pings of
    /// the protocol); fails after <paramref name="within"/> (30 s) or when the server closes.</summary>
    public async Task<T> ReceiveMatchingAsync<T>(Func<T, bool> match, TimeSpan? within = null)
        where T : ServerFrame
    {
        var limit = within ?? TimeSpan.FromSeconds(30);
        var deadline = DateTime.UtcNow + limit;
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            Xunit.Assert.True(left > TimeSpan.Zero, $"no matching {typeof(T).Name} within {limit}");
            var frame = await ReceiveAsync(left) ?? throw new InvalidOperationException("closed");
            if (frame is T t && match(t))
            {
                return t;
            }
        }
    }

    /// <summary>Receives (and discards frames) until the server closes; returns the close status.</summary>
    public async Task<WebSocketCloseStatus?> ReceiveCloseAsync(TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        while (await ReceiveAsync(TimeSpan.FromTicks(Math.Max(1, (deadline - DateTime.UtcNow).Ticks))) is not null)
        {
        }

        return _socket.CloseStatus;
    }

    /// <summary>The server's close code, once a receive returned null.</summary>
    public WebSocketCloseStatus? CloseStatus => _socket.CloseStatus;

    /// <summary>The server's close reason, once a receive returned null.</summary>
    public string? CloseDescription => _socket.CloseStatusDescription;

    public async ValueTask DisposeAsync()
    {
        if (_socket.State == WebSocketState.Open)
        {
            try
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await _socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", cts.Token);
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException)
            {
                // the server may already be gone
            }
        }

        _socket.Dispose();
        _invoker.Dispose();
    }
}
