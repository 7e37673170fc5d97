using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Gateway.WebSockets.Tests;

/// <summary>
/// Real Kestrel on 127.0.0.1 port 0 with a test-only <see cref="ConnectionHandler"/>: handshake, then
/// <see cref="WebSocketConnection.RunAsync"/> with a handler that echoes every binary message through an
/// <see cref="OutboundFrame"/>. Records every handshake result and connection so tests can inspect the server side.
/// </summary>
public sealed class WsTestServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private WsTestServer(WebApplication app, ServerState state, IPEndPoint endPoint)
    {
        _app = app;
        State = state;
        EndPoint = endPoint;
    }

    public ServerState State { get; }

    public IPEndPoint EndPoint { get; }

    public Uri WsUri(string path = "/") => new($"ws://127.0.0.1:{EndPoint.Port}{path}");

    public static Task<WsTestServer> StartAsync(WebSocketOptions? options = null,
        Func<HandshakeRequest, HandshakeDecision>? decide = null)
    {
        var inline = decide ?? DefaultDecide;
        return StartAsync(options, request => new ValueTask<HandshakeDecision>(inline(request)));
    }

    /// <summary>A server whose handshake decision may wait (the decide overload of <c>WebSocketHandshake.AcceptAsync</c>).</summary>
    public static async Task<WsTestServer> StartAsync(WebSocketOptions? options, Func<HandshakeRequest, ValueTask<HandshakeDecision>> decide)
    {
        var state = new ServerState(options ?? new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero }, decide);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(state);
        builder.WebHost.ConfigureKestrel(k =>
            k.Listen(IPAddress.Loopback, 0, listen => listen.UseConnectionHandler<EchoConnectionHandler>()));
        var app = builder.Build();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await app.StartAsync(cts.Token);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        var endPoint = new IPEndPoint(IPAddress.Loopback, new Uri(address).Port);
        return new WsTestServer(app, state, endPoint);
    }

    /// <summary>Accepts any path; confirms "chatgw.v1" when offered.</summary>
    public static HandshakeDecision DefaultDecide(HandshakeRequest request) =>
        request.Path == "/forbidden"
            ? HandshakeDecision.Reject(404, "No such endpoint.")
            : HandshakeDecision.Accept(request.SubProtocols.Contains("chatgw.v1") ? "chatgw.v1" : null);

    public async ValueTask DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(cts.Token);
        await _app.DisposeAsync();
    }

    public sealed class ServerState(WebSocketOptions options, Func<HandshakeRequest, ValueTask<HandshakeDecision>> decide)
    {
        public WebSocketOptions Options { get; } = options;

        public Func<HandshakeRequest, ValueTask<HandshakeDecision>> Decide { get; } = decide;

        public ConcurrentQueue<HandshakeResult> Handshakes { get; } = new();

        public ConcurrentQueue<WebSocketConnection> Connections { get; } = new();

        /// <summary>Completes when a connection's RunAsync ended; carries its exception, if any.</summary>
        public ConcurrentDictionary<WebSocketConnection, TaskCompletionSource<Exception?>> Ended { get; } = new();

        public ConcurrentQueue<Exception> Faults { get; } = new();

        /// <summary>Polls until a connection was accepted.</summary>
        public async Task<WebSocketConnection> WaitForConnectionAsync(TimeSpan? timeout = null)
        {
            var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(5));
            while (DateTime.UtcNow < deadline)
            {
                if (Connections.TryPeek(out var connection))
                {
                    return connection;
                }

                await Task.Delay(10);
            }

            throw new TimeoutException("No WebSocket connection was accepted.");
        }

        public async Task<HandshakeResult> WaitForHandshakeAsync(TimeSpan? timeout = null)
        {
            var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(5));
            while (DateTime.UtcNow < deadline)
            {
                if (Handshakes.TryPeek(out var result))
                {
                    return result;
                }

                await Task.Delay(10);
            }

            throw new TimeoutException("No handshake finished.");
        }

        /// <summary>Waits until RunAsync of <paramref name="connection"/> ended.</summary>
        public Task<Exception?> WaitForEndAsync(WebSocketConnection connection, TimeSpan? timeout = null) =>
            Ended.GetOrAdd(connection, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).Task
                .WaitAsync(timeout ?? TimeSpan.FromSeconds(10));
    }

    private sealed class EchoConnectionHandler(ServerState state) : ConnectionHandler
    {
        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            var result = await WebSocketHandshake.AcceptAsync(connection.Transport, state.Options, state.Decide,
                connection.ConnectionClosed);
            state.Handshakes.Enqueue(result);
            if (!result.Accepted)
            {
                return;
            }

            var ws = new WebSocketConnection(connection.Transport, state.Options);
            var ended = state.Ended.GetOrAdd(ws, _ => new(TaskCreationOptions.RunContinuationsAsynchronously));
            state.Connections.Enqueue(ws);
            try
            {
                await ws.RunAsync(EchoHandler.Instance, connection.ConnectionClosed);
                ended.TrySetResult(null);
            }
            catch (Exception ex)
            {
                state.Faults.Enqueue(ex);
                ended.TrySetResult(ex);
            }
        }
    }

    /// <summary>Echoes each binary message; a message starting with "throw" makes the handler throw.</summary>
    public sealed class EchoHandler : IWebSocketMessageHandler
    {
        public static readonly EchoHandler Instance = new();

        public ValueTask OnMessageAsync(WebSocketConnection connection, ReadOnlySequence<byte> payload)
        {
            if (payload.Length == 5 && payload.FirstSpan.Length >= 5 && payload.FirstSpan[..5].SequenceEqual("throw"u8))
            {
                throw new InvalidOperationException("handler failure for test");
            }

            var frame = OutboundFrame.Rent((int)payload.Length);
            foreach (var segment in payload)
            {
                segment.Span.CopyTo(frame.GetSpan(segment.Length));
                frame.Advance(segment.Length);
            }

            frame.Seal();
            if (!connection.TryEnqueue(frame))
            {
                connection.Close(4002, "slow consumer");
            }

            frame.Release();
            return ValueTask.CompletedTask;
        }
    }
}
