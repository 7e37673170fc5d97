using System.Buffers;
using System.Net.WebSockets;
using System.Text;
using System.Threading.Channels;
using Gateway.Protocol;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Gateway.Client.Tests;

/// <summary>
/// A test double of the gateway: real Kestrel on port 0 with ASP.NET Core's WebSocket middleware. Each accepted
/// connection gets a Hello and is handed to the test, which scripts the rest frame by frame.
/// </summary>
public sealed class ScriptedServer : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private readonly WebApplication _app;
    private readonly Channel<ScriptedConnection> _accepted = Channel.CreateUnbounded<ScriptedConnection>();
    private readonly List<ScriptedConnection> _all = [];

    private ScriptedServer(WebApplication app) => _app = app;

    public Uri Endpoint { get; private set; } = null!;

    /// <summary>When set, the upgrade is refused with this HTTP status.</summary>
    public int? RejectStatus { get; set; }

    /// <summary>The token expiry announced in each Hello (Unix ms); default year 2100.</summary>
    public long TokenExpiresAt { get; set; } = 4_102_444_800_000;

    /// <summary>Connections accepted so far.</summary>
    public int AcceptedCount => _acceptedCount;

    private int _acceptedCount;

    public static async Task<ScriptedServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var server = new ScriptedServer(app);
        app.UseWebSockets();
        app.Map(ProtocolConstants.DefaultPath, server.HandleAsync);
        await app.StartAsync().WaitAsync(Timeout);
        var url = app.Urls.Single().Replace("http://", "ws://", StringComparison.Ordinal);
        server.Endpoint = new Uri(url + ProtocolConstants.DefaultPath);
        return server;
    }

    private async Task HandleAsync(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            return;
        }

        if (RejectStatus is { } status)
        {
            context.Response.StatusCode = status;
            return;
        }

        var requested = context.WebSockets.WebSocketRequestedProtocols.ToArray();
        var selected = requested.Contains(ProtocolConstants.SubProtocol) ? ProtocolConstants.SubProtocol : null;
        var socket = await context.WebSockets.AcceptWebSocketAsync(selected);
        var number = Interlocked.Increment(ref _acceptedCount);
        var conn = new ScriptedConnection(context, socket, number, requested, selected,
            context.Request.Headers.Authorization.ToString(), context.Request.Query["access_token"].ToString());
        await conn.SendAsync(new HelloFrame(ProtocolConstants.Version, "session-" + number, "t1", "alice",
            ProtocolConstants.DefaultMaxMessageBytes, ProtocolConstants.DefaultMaxContentBytes, 30, TokenExpiresAt));
        lock (_all)
        {
            _all.Add(conn);
        }

        _accepted.Writer.TryWrite(conn);
        await conn.Finished; // the request lives as long as the test keeps the connection
    }

    /// <summary>The next accepted connection (its Hello is already sent).</summary>
    public Task<ScriptedConnection> AcceptAsync() => _accepted.Reader.ReadAsync().AsTask().WaitAsync(Timeout);

    public async ValueTask DisposeAsync()
    {
        lock (_all)
        {
            foreach (var conn in _all)
            {
                conn.Abort();
            }
        }

        await _app.StopAsync().WaitAsync(Timeout);
        await _app.DisposeAsync();
    }
}

/// <summary>One server-side connection the test drives.</summary>
public sealed class ScriptedConnection
{
    private readonly HttpContext _context;
    private readonly WebSocket _socket;
    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _sendLock = new(1, 1);

    internal ScriptedConnection(HttpContext context, WebSocket socket, int number, string[] requestedProtocols,
        string? selectedProtocol, string authorization, string accessTokenQuery)
    {
        _context = context;
        _socket = socket;
        Number = number;
        RequestedProtocols = requestedProtocols;
        SelectedProtocol = selectedProtocol;
        Authorization = authorization;
        AccessTokenQuery = accessTokenQuery;
    }

    public int Number { get; }

    public string[] RequestedProtocols { get; }

    public string? SelectedProtocol { get; }

    /// <summary>The Authorization header, empty when absent.</summary>
    public string Authorization { get; }

    /// <summary>The access_token query parameter, empty when absent.</summary>
    public string AccessTokenQuery { get; }

    internal Task Finished => _finished.Task;

    public async Task SendAsync(ServerFrame frame)
    {
        var buffer = new ArrayBufferWriter<byte>();
        frame.WriteTo(buffer);
        await _sendLock.WaitAsync(ScriptedServer.Timeout);
        try
        {
            await _socket.SendAsync(buffer.WrittenMemory, WebSocketMessageType.Binary, true, CancellationToken.None)
                .AsTask().WaitAsync(ScriptedServer.Timeout);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    public async Task SendAsync(params ServerFrame[] frames)
    {
        foreach (var frame in frames)
        {
            await SendAsync(frame);
        }
    }

    /// <summary>Reads the next client frame; throws when the client closed.</summary>
    public async Task<ReceivedFrame> ReceiveAsync()
    {
        using var cts = new CancellationTokenSource(ScriptedServer.Timeout);
        var buffer = new ArrayBufferWriter<byte>();
        ValueWebSocketReceiveResult result;
        do
        {
            result = await _socket.ReceiveAsync(buffer.GetMemory(4096), cts.Token);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                throw new InvalidOperationException($"The client closed: {_socket.CloseStatus}.");
            }

            Assert.Equal(WebSocketMessageType.Binary, result.MessageType);
            buffer.Advance(result.Count);
        }
        while (!result.EndOfMessage);

        Assert.Equal(ReadStatus.Ok, ClientFrameReader.TryRead(new ReadOnlySequence<byte>(buffer.WrittenMemory), out var frame));
        return ReceivedFrame.From(frame);
    }

    /// <summary>Reads client frames until one of <paramref name="type"/> (skipping others, e.g. a repeated send).</summary>
    public async Task<ReceivedFrame> ReceiveAsync(FrameType type)
    {
        while (true)
        {
            var frame = await ReceiveAsync();
            if (frame.Type == type)
            {
                return frame;
            }
        }
    }

    /// <summary>
    /// Reads until the client's close frame and returns its status, failing on any data frame in between. The
    /// connection stays open for the test to send more frames; <see cref="CloseAsync"/> then answers the close.
    /// </summary>
    public async Task<WebSocketCloseStatus?> ReceiveCloseAsync()
    {
        using var cts = new CancellationTokenSource(ScriptedServer.Timeout);
        var scratch = new byte[4096];
        while (true)
        {
            var result = await _socket.ReceiveAsync(scratch.AsMemory(), cts.Token);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return _socket.CloseStatus;
            }

            Assert.Fail($"Expected the client's close, got a {result.MessageType} frame.");
        }
    }

    /// <summary>Drops the TCP connection with no close frame, like a crashed pod.</summary>
    public void Abort()
    {
        if (!_finished.Task.IsCompleted)
        {
            // The HttpContext is recycled once the request ends: abort only a live one.
            _context.Abort();
            _finished.TrySetResult();
        }
    }

    /// <summary>Sends a close frame with <paramref name="code"/> and ends the connection.</summary>
    public async Task CloseAsync(int code, string reason = "")
    {
        using var cts = new CancellationTokenSource(ScriptedServer.Timeout);
        await _socket.CloseOutputAsync((WebSocketCloseStatus)code, reason, cts.Token);
        try
        {
            // Wait for the client's close reply so the close handshake completes.
            var scratch = new byte[1024];
            while ((await _socket.ReceiveAsync(scratch, cts.Token)).MessageType != WebSocketMessageType.Close)
            {
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
            // The client may abort instead of replying; either ends the connection.
        }

        _finished.TrySetResult();
    }
}

/// <summary>An owned copy of a client frame (a <see cref="ClientFrame"/> only borrows the receive buffer).</summary>
public sealed record ReceivedFrame(
    FrameType Type, uint RequestId, string ChatId, string ClientMessageId, string ContentType, byte[] Content,
    long? ExpiresAt, ChatCursor[] Cursors, string[] ChatIds, ulong BeforeSeq, uint Limit, string Token)
{
    public string Text => Encoding.UTF8.GetString(Content);

    /// <summary>Send's optional traceparent element, or null when the frame has none.</summary>
    public string? TraceParent { get; init; }

    /// <summary>Send's optional tracestate element, or null when the frame has none.</summary>
    public string? TraceState { get; init; }

    public static ReceivedFrame From(in ClientFrame frame)
    {
        var cursors = new List<ChatCursor>();
        var chatIds = new List<string>();
        if (frame.Type is FrameType.Subscribe or FrameType.Unsubscribe)
        {
            var items = new SubscribeItemReader(frame);
            while (items.TryNext(out var chatId, out var afterSeq))
            {
                var id = Encoding.UTF8.GetString(chatId);
                chatIds.Add(id);
                cursors.Add(new ChatCursor(id, afterSeq));
            }
        }

        return new ReceivedFrame(frame.Type, frame.RequestId, Encoding.UTF8.GetString(frame.ChatId),
            Encoding.UTF8.GetString(frame.ClientMessageId), Encoding.UTF8.GetString(frame.ContentType), frame.Content.ToArray(),
            frame.ExpiresAt, [.. cursors], [.. chatIds], frame.BeforeSeq, frame.Limit, Encoding.UTF8.GetString(frame.Token))
        {
            TraceParent = frame.TraceParent.IsEmpty ? null : Encoding.UTF8.GetString(frame.TraceParent),
            TraceState = frame.TraceState.IsEmpty ? null : Encoding.UTF8.GetString(frame.TraceState),
        };
    }
}
