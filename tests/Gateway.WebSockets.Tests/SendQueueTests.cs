using System.Buffers;
using Xunit;

namespace Gateway.WebSockets.Tests;

/// <summary>
/// The bounded send queue and the writer pump, over real in-memory pipes: the test decides when the "peer" reads, so a
/// slow consumer can be produced deterministically (the output pipe pauses the writer at a small threshold). Every
/// wait is on an event (the writer's flush blocking, frames arriving, the run ending), never on elapsed time.
/// </summary>
public class SendQueueTests
{
    private const int PayloadSize = 2000;

    private sealed class NoHandler : IWebSocketMessageHandler
    {
        public ValueTask OnMessageAsync(WebSocketConnection connection, ReadOnlySequence<byte> payload) => default;
    }

    private static OutboundFrame Frame(byte fill)
    {
        var frame = OutboundFrame.Rent(PayloadSize);
        frame.GetSpan(PayloadSize)[..PayloadSize].Fill(fill);
        frame.Advance(PayloadSize);
        return frame.Seal();
    }

    [Fact]
    public async Task Frame_bound_refuses_then_drains_in_order_and_releases_every_reference()
    {
        var transport = new BlockingPeerTransport();
        var connection = new WebSocketConnection(transport, new WebSocketOptions
        {
            MaxOutboundFrames = 4,
            KeepAliveInterval = TimeSpan.Zero,
        });
        var run = connection.RunAsync(new NoHandler(), CancellationToken.None);

        var frames = Enumerable.Range(1, 6).Select(i => Frame((byte)i)).ToArray();

        // The first frame is taken by the writer, which then blocks on the flush: nobody reads the output. The writer
        // dequeued it before flushing, so from here whatever is queued stays queued until the peer reads.
        Assert.True(connection.TryEnqueue(frames[0]));
        await transport.FlushBlocked.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, connection.FramesQueued);
        for (int i = 1; i <= 4; i++)
        {
            Assert.True(connection.TryEnqueue(frames[i]));
        }

        Assert.False(connection.TryEnqueue(frames[5])); // the fifth waiting frame is over the bound
        Assert.Equal(1, frames[5].RefCount);              // refused: no reference taken
        Assert.Equal(4, connection.FramesQueued);
        Assert.Equal(4L * frames[1].Length, connection.BytesQueued);

        // The peer starts reading: everything arrives in order, and the writer released its references.
        // The writer releases each frame's reference as soon as its bytes are in the pipe, before the flush that lets
        // the peer see them: once the peer has all five, all five references are back.
        var received = await transport.ReadFramesAsync(5);
        Assert.Equal([1, 2, 3, 4, 5], received.Select(f => (int)f.Payload[0]));
        Assert.All(frames, f => Assert.Equal(1, f.RefCount));
        Assert.Equal(0, connection.BytesQueued);

        // Room again.
        Assert.True(connection.TryEnqueue(frames[5]));
        Assert.Equal(6, (await transport.ReadFramesAsync(1))[0].Payload[0]);

        connection.Abort();
        await run.WaitAsync(TimeSpan.FromSeconds(30));
        foreach (var frame in frames)
        {
            Assert.Equal(1, frame.RefCount);
            frame.Release();
        }
    }

    [Fact]
    public async Task Byte_bound_refuses_and_close_bypasses_the_bounds_after_queued_frames()
    {
        var transport = new BlockingPeerTransport();
        var frame = Frame(9);
        var connection = new WebSocketConnection(transport, new WebSocketOptions
        {
            MaxOutboundBytes = (3 * frame.Length) + 10,
            KeepAliveInterval = TimeSpan.Zero,
            CloseTimeout = TimeSpan.FromSeconds(30),
        });
        var run = connection.RunAsync(new NoHandler(), CancellationToken.None);

        Assert.True(connection.TryEnqueue(frame));
        await transport.FlushBlocked.WaitAsync(TimeSpan.FromSeconds(30)); // writer blocked in flush
        Assert.Equal(0, connection.FramesQueued);
        Assert.True(connection.TryEnqueue(frame));
        Assert.True(connection.TryEnqueue(frame));
        Assert.True(connection.TryEnqueue(frame));
        Assert.False(connection.TryEnqueue(frame)); // 4 × frame > bound
        Assert.Equal(4, frame.RefCount);            // ours + three queued

        connection.Close(4002, "slow consumer");    // queued even though the queue is full
        Assert.False(connection.TryEnqueue(frame)); // closing refuses everything
        var received = await transport.ReadFramesAsync(5);
        Assert.Equal(WebSocketOpcode.Close, received[^1].Opcode);
        Assert.All(received.Take(4), f => Assert.Equal(WebSocketOpcode.Binary, f.Opcode));

        // The peer answers the close; the run ends and completes the output.
        byte[] close = Gateway.TestUtilities.RawWebSocketClient.BuildFrame(Gateway.TestUtilities.RawWebSocketClient.OpClose,
            Gateway.TestUtilities.RawWebSocketClient.ClosePayload(4002));
        await transport.ToServer.Writer.WriteAsync(close);
        await run.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal((ushort)4002, connection.CloseStatus);
        Assert.Equal(1, frame.RefCount);
        frame.Release();

        var rest = await transport.ToPeer.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(rest.IsCompleted);
    }

    [Fact]
    public async Task A_wait_for_room_completes_when_the_pump_drains_and_not_while_the_peer_reads_nothing()
    {
        var transport = new BlockingPeerTransport();
        var connection = new WebSocketConnection(transport, new WebSocketOptions { MaxOutboundFrames = 8, KeepAliveInterval = TimeSpan.Zero });
        var run = connection.RunAsync(new NoHandler(), CancellationToken.None);

        // Room already: completes synchronously, no task.
        Assert.True(connection.WaitForQueueAtMostAsync(2, long.MaxValue, CancellationToken.None).IsCompletedSuccessfully);

        Assert.True(connection.TryEnqueue(Frame(1)));
        await transport.FlushBlocked.WaitAsync(TimeSpan.FromSeconds(30)); // the writer holds frame 1 in a blocked flush
        for (byte i = 2; i <= 5; i++)
        {
            Assert.True(connection.TryEnqueue(Frame(i)));
        }

        // Four queued, room wanted for at most two: it must not complete while the peer reads nothing, whatever the time.
        var wait = connection.WaitForQueueAtMostAsync(2, long.MaxValue, CancellationToken.None).AsTask();
        Assert.False(wait.IsCompleted);
        Assert.Equal(4, connection.FramesQueued);

        // The peer reads: the flush completes, the pump takes the four queued frames in its next pass and signals.
        var received = await transport.ReadFramesAsync(5);
        await wait.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(connection.FramesQueued <= 2);
        Assert.Equal([1, 2, 3, 4, 5], received.Select(f => (int)f.Payload[0]));

        connection.Abort();
        await run.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Abort_releases_frames_still_queued()
    {
        var transport = new BlockingPeerTransport();
        var connection = new WebSocketConnection(transport, new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero });
        var run = connection.RunAsync(new NoHandler(), CancellationToken.None);
        var frame = Frame(1);
        Assert.True(connection.TryEnqueue(frame));
        await transport.FlushBlocked.WaitAsync(TimeSpan.FromSeconds(30));
        for (int i = 0; i < 10; i++)
        {
            Assert.True(connection.TryEnqueue(frame));
        }

        connection.Abort();
        await run.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1, frame.RefCount);
        Assert.Equal(0, connection.BytesQueued);
        Assert.Null(connection.CloseStatus);
        frame.Release();
    }

    [Fact]
    public async Task Cancelling_the_run_token_aborts()
    {
        var transport = new BlockingPeerTransport();
        var connection = new WebSocketConnection(transport, new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero });
        using var cts = new CancellationTokenSource();
        var run = connection.RunAsync(new NoHandler(), cts.Token);
        await cts.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(connection.Closing.IsCancellationRequested);
    }

    [Fact]
    public async Task Deferred_frames_wait_for_Wake_then_go_out_in_one_flush()
    {
        var transport = new BlockingPeerTransport();
        var connection = new WebSocketConnection(transport, new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero });
        var run = connection.RunAsync(new NoHandler(), CancellationToken.None);
        var frames = Enumerable.Range(1, 5).Select(i => Frame((byte)i)).ToArray();

        Assert.True(connection.TryEnqueueDeferred(frames[0], out var first));
        Assert.True(connection.TryEnqueueDeferred(frames[1], out var second));
        Assert.True(connection.TryEnqueueDeferred(frames[2], out var third));
        Assert.True(first);   // the producer must wake this connection...
        Assert.False(second); // ...once, however many frames it deferred
        Assert.False(third);

        // Nothing is written while the wake is deferred. Checked without waiting: a deferred enqueue that woke the
        // writer would have moved it out of idle synchronously (Schedule), and a writer that had already finished a
        // pass would have dequeued the frames, so either the idle check or the count below catches it.
        Assert.True(connection.IsWriterIdle);
        Assert.Equal(3, connection.FramesQueued);
        Assert.False(transport.ToPeer.Reader.TryRead(out _));

        connection.Wake();

        // One flush: the first read sees all three frames at once.
        var read = await transport.ToPeer.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(3 * frames[0].Length, read.Buffer.Length);
        transport.ToPeer.Reader.AdvanceTo(read.Buffer.End);

        // After a wake the next deferred frame needs one again; an immediate enqueue by someone else sends it along.
        Assert.True(connection.TryEnqueueDeferred(frames[3], out var again));
        Assert.True(again);
        Assert.True(connection.TryEnqueue(frames[4]));
        var rest = await transport.ReadFramesAsync(2);
        Assert.Equal([4, 5], rest.Select(f => (int)f.Payload[0]));
        connection.Wake(); // the producer's wake finds nothing left: harmless

        // Released before the flush that delivered them (see above).
        Assert.All(frames, f => Assert.Equal(1, f.RefCount));
        connection.Abort();
        await run.WaitAsync(TimeSpan.FromSeconds(30));
        foreach (var frame in frames)
        {
            frame.Release();
        }
    }
}
