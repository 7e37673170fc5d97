using System.Buffers;
using System.Buffers.Binary;
using Xunit;
using C = Gateway.TestUtilities.RawWebSocketClient;

namespace Gateway.WebSockets.Tests;

/// <summary>
/// Pongs while the writer is held up by a peer that does not read: at most one pong waits in the queue (pongs bypass
/// its bounds, so a pinging peer must not grow it), and it answers the newest ping (RFC 6455 §5.5.3). Deterministic:
/// the writer is blocked on a flush the test observes, and the pings are known to be processed when a message sent
/// after them reaches the handler (the receive loop handles frames in order).
/// </summary>
public class PingFloodTests
{
    private const int BlockerSize = 2000; // over the transport's 1 KiB pause threshold: the writer's flush waits

    /// <summary>Signals the first message: every frame the peer sent before it has been processed.</summary>
    private sealed class MarkerHandler : IWebSocketMessageHandler
    {
        public TaskCompletionSource Received { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ValueTask OnMessageAsync(WebSocketConnection connection, ReadOnlySequence<byte> payload)
        {
            Received.TrySetResult();
            return default;
        }
    }

    private static byte[] PingPayload(int index, int length)
    {
        var payload = new byte[length];
        payload.AsSpan().Fill(0x5A);
        BinaryPrimitives.WriteInt32BigEndian(payload, index);
        return payload;
    }

    /// <summary>
    /// Starts a connection over <paramref name="transport"/> and blocks its writer: a 2 KB frame whose flush waits for
    /// the peer. Afterwards every frame the server queues stays queued until the test reads.
    /// </summary>
    private static async Task<(WebSocketConnection Connection, Task Run, MarkerHandler Marker)> StartBlockedAsync(
        BlockingPeerTransport transport)
    {
        var connection = new WebSocketConnection(transport, new WebSocketOptions
        {
            KeepAliveInterval = TimeSpan.Zero,
            CloseTimeout = TimeSpan.FromSeconds(30),
        });
        var marker = new MarkerHandler();
        var run = connection.RunAsync(marker, CancellationToken.None);
        var blocker = OutboundFrame.Rent(BlockerSize);
        blocker.Advance(BlockerSize);
        Assert.True(connection.TryEnqueue(blocker.Seal()));
        blocker.Release();
        await transport.FlushBlocked.WaitAsync(TimeSpan.FromSeconds(30));
        return (connection, run, marker);
    }

    /// <summary>Sends the marker message and waits until the handler got it: every earlier frame has been handled.</summary>
    private static async Task SendMarkerAndWaitAsync(BlockingPeerTransport transport, MarkerHandler marker)
    {
        await transport.ToServer.Writer.WriteAsync(C.BuildFrame(C.OpBinary, "marker"u8)).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        await marker.Received.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>The peer closes; the test reads everything the server sent, up to its close echo, and the run ends.</summary>
    private static async Task<List<(WebSocketOpcode Opcode, byte[] Payload)>> CloseAndReadAllAsync(BlockingPeerTransport transport,
        WebSocketConnection connection, Task run, int expectedFrames)
    {
        await transport.ToServer.Writer.WriteAsync(C.BuildFrame(C.OpClose, C.ClosePayload(1000))).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        var frames = await transport.ReadFramesAsync(expectedFrames);
        await run.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal((ushort)1000, connection.CloseStatus);

        // The run completed the output after the close echo: nothing else was sent.
        var rest = await transport.ToPeer.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(rest.IsCompleted);
        Assert.True(rest.Buffer.IsEmpty, $"{rest.Buffer.Length} bytes after the close frame");
        return frames;
    }

    [Fact]
    public async Task A_ping_arriving_while_a_pong_waits_makes_that_pong_answer_the_newer_ping()
    {
        var transport = new BlockingPeerTransport();
        var (connection, run, marker) = await StartBlockedAsync(transport);

        // Ping A, then ping B (shorter, so the rewritten pong also changes length) while A's pong waits.
        await transport.ToServer.Writer.WriteAsync(C.BuildFrame(C.OpPing, "ping A: the older one"u8));
        await transport.ToServer.Writer.WriteAsync(C.BuildFrame(C.OpPing, "ping B"u8));
        await SendMarkerAndWaitAsync(transport, marker);
        Assert.Equal(1, connection.FramesQueued);
        Assert.Equal(2 + "ping B".Length, connection.BytesQueued);

        var frames = await CloseAndReadAllAsync(transport, connection, run, 3);
        Assert.Equal([WebSocketOpcode.Binary, WebSocketOpcode.Pong, WebSocketOpcode.Close], frames.Select(f => f.Opcode));
        Assert.Equal("ping B"u8.ToArray(), frames[1].Payload);
    }

    [Fact]
    public async Task Pings_from_a_peer_that_never_reads_keep_one_pong_queued_which_answers_the_last_ping()
    {
        var transport = new BlockingPeerTransport();
        var (connection, run, marker) = await StartBlockedAsync(transport);

        // 10,000 pings of up to 125 bytes (lengths vary so that rewrites change the pong's size), each carrying its
        // index, in writes of 1,000: 1.2 MB of pongs if each were queued.
        const int Pings = 10_000;
        byte[] last = [];
        for (var burst = 0; burst < Pings / 1000; burst++)
        {
            var bytes = new List<byte>();
            for (var i = burst * 1000; i < (burst + 1) * 1000; i++)
            {
                last = PingPayload(i, 4 + (i % 122));
                bytes.AddRange(C.BuildFrame(C.OpPing, last));
            }

            await transport.ToServer.Writer.WriteAsync(bytes.ToArray()).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        }

        await SendMarkerAndWaitAsync(transport, marker);
        Assert.Equal(1, connection.FramesQueued);
        Assert.Equal(2 + last.Length, connection.BytesQueued);
        Assert.False(connection.Closing.IsCancellationRequested);

        var frames = await CloseAndReadAllAsync(transport, connection, run, 3);
        Assert.Equal([WebSocketOpcode.Binary, WebSocketOpcode.Pong, WebSocketOpcode.Close], frames.Select(f => f.Opcode));
        Assert.Equal(last, frames[1].Payload);
    }
}
