using System.Net;
using System.Net.WebSockets;
using Gateway.Tools.Common;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using PeerClients.Internal;

namespace PeerClients;

/// <summary>
/// Client of the SignalR peer (<c>bench/peers/signalr</c>) with the official .NET client and the MessagePack hub
/// protocol: <c>Join(room)</c> is invoked (so it completes when the server has added the connection to the group),
/// <c>Publish(room, payload)</c> is sent without waiting for a result, and the server's <c>m(room, payload)</c> calls
/// are the deliveries.
/// </summary>
/// <remarks>
/// WebSockets only, negotiation skipped (the client's documented option for a WebSockets-only server: one HTTP round
/// trip less per connect). The socket is opened by a <c>HttpConnectionOptions.WebSocketFactory</c> so it can be
/// bound to <c>localEndPoint</c>; the factory sends the token as <c>Authorization: Bearer</c>, as the default factory
/// does outside browsers. Keep-alive and server-timeout stay at the client's defaults (15 s and 30 s).
/// </remarks>
public sealed class SignalRLoadConnection : ILoadConnection
{
    private HubConnection? _connection;
    private volatile bool _disposing;

    /// <inheritdoc />
    public Action<string, ulong, ReadOnlySpan<byte>>? OnMessage { get; set; }

    /// <inheritdoc />
    public Action<string>? OnError { get; set; }

    /// <inheritdoc />
    public async Task ConnectAsync(Uri endpoint, string userId, string? token, IPEndPoint? localEndPoint, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        var connection = new HubConnectionBuilder()
            .WithUrl(endpoint, HttpTransportType.WebSockets, options =>
            {
                options.SkipNegotiation = true;
                options.WebSocketFactory = async (context, factoryCt) =>
                {
                    var socket = new ClientWebSocket();
                    if (token is not null)
                    {
                        socket.Options.SetRequestHeader("Authorization", "Bearer " + token);
                    }
                    try
                    {
                        await WebSocketConnector.ConnectAsync(socket, context.Uri, localEndPoint, factoryCt).ConfigureAwait(false);
                    }
                    catch
                    {
                        socket.Dispose();
                        throw;
                    }
                    return socket;
                };
            })
            .AddMessagePackProtocol()
            .Build();

        // A byte[] parameter, as a SignalR user declares it: the MessagePack protocol reads a bin into a new array.
        connection.On<string, byte[]>("m", (room, payload) => OnMessage?.Invoke(room, 0, payload));
        connection.Closed += error =>
        {
            if (!_disposing)
            {
                OnError?.Invoke(error?.Message ?? "The server closed the connection.");
            }
            return Task.CompletedTask;
        };

        try
        {
            await connection.StartAsync(ct).ConfigureAwait(false);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        _connection = connection;
    }

    /// <inheritdoc />
    public Task SubscribeAsync(string room, CancellationToken ct)
        => Connection.InvokeAsync("Join", room, ct);

    /// <inheritdoc />
    public ValueTask PublishAsync(string room, ReadOnlyMemory<byte> payload, CancellationToken ct)
        // SendAsync completes once the message is written, without a completion message from the server: the
        // fire-and-forget broadcast SignalR users write. The hub takes byte[], so the payload is passed as one.
        => new(Connection.SendAsync("Publish", room, payload.ToArray(), ct));

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _disposing = true;
        if (_connection is { } connection)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    private HubConnection Connection => _connection ?? throw new InvalidOperationException("Not connected.");
}
