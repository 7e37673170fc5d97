using System.Net.Sockets;
using System.Text;
using Xunit;
using C = Gateway.TestUtilities.RawWebSocketClient;

namespace Gateway.WebSockets.Tests;

/// <summary>A peer that pings without ever reading must not grow the server's send queue (pongs bypass its bounds).</summary>
public class PingFloodTests
{
    [Fact]
    public async Task Pings_from_a_peer_that_never_reads_keep_at_most_one_pong_queued()
    {
        await using var server = await WsTestServer.StartAsync(new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero });

        // A raw socket with a small receive window that never reads: once the kernel buffers are full the server's
        // writer blocks, and every further pong would have to wait in the queue.
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        await socket.ConnectAsync(server.EndPoint);
        await socket.SendAsync(Encoding.ASCII.GetBytes(C.BuildUpgradeRequest()));

        // 40,000 pings of 125 bytes: 5 MB of pongs, more than loopback buffers hold (4 MB send buffer at most).
        var ping = C.BuildFrame(C.OpPing, new byte[125]);
        var burst = new byte[ping.Length * 1000];
        for (var i = 0; i < 1000; i++)
        {
            ping.CopyTo(burst, i * ping.Length);
        }

        var connection = await server.State.WaitForConnectionAsync();
        var maxQueued = 0;
        for (var i = 0; i < 40; i++)
        {
            await socket.SendAsync(burst).WaitAsync(TimeSpan.FromSeconds(30));
            maxQueued = Math.Max(maxQueued, connection.FramesQueued);
        }

        // Let the receive loop finish reading what was sent, then look again.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(2);
        while (DateTime.UtcNow < deadline)
        {
            maxQueued = Math.Max(maxQueued, connection.FramesQueued);
            await Task.Delay(10);
        }

        Assert.InRange(maxQueued, 0, 1);
        Assert.False(connection.Closing.IsCancellationRequested);
    }
}
