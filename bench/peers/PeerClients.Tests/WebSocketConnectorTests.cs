using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using PeerClients.Internal;

namespace PeerClients.Tests;

public sealed class WebSocketConnectorTests
{
    [Fact]
    public async Task ConnectsFromTheRequestedLocalAddress()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        using var socket = new ClientWebSocket();
        var local = new IPEndPoint(IPAddress.Parse("127.0.0.3"), 0);
        // The listener never answers the upgrade; the connect is cancelled once the accepted socket was inspected.
        using var connectCts = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
        var connect = WebSocketConnector.ConnectAsync(socket, new Uri($"ws://127.0.0.1:{port}/"), local, connectCts.Token);

        using var accepted = await listener.AcceptSocketAsync(cts.Token);
        var remote = (IPEndPoint)accepted.RemoteEndPoint!;
        Assert.Equal(IPAddress.Parse("127.0.0.3"), remote.Address);
        Assert.NotEqual(0, remote.Port);

        await connectCts.CancelAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => connect);
    }
}
