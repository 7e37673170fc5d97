using System.Buffers;
using System.IO.Pipelines;
using Gateway.WebSockets.Internal;
using Xunit;

namespace Gateway.WebSockets.Tests;

/// <summary>
/// The bounded send queue and the writer pump, over real in-memory pipes: the test decides when the "peer" reads, so a
/// slow consumer can be produced deterministically (the output pipe pauses the writer at a small threshold).
/// </summary>
public class SendQueueTests
{
    private const int PayloadSize = 2000;

    private sealed class Transport : IDuplexPipe
    {
        // Peer → server bytes, and server → peer bytes with a 1 KiB pause threshold so one 2 KB frame blocks a flush.
        public Pipe ToServer { get; } = new();

        public Pipe ToPeer { get; } = new(new PipeOptions(pauseWriterThreshold: 1024, resumeWriterThreshold: 512));

        public PipeReader Input => ToServer.Reader;

        public PipeWriter Output => ToPeer.Writer;
    }

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

    private static async Task PollAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached before the deadline");
            await Task.Delay(5);
        }
    }

    /// <summary>Reads server frames from the peer side until <paramref name="count"/> were seen; returns their first payload byte / opcode.</summary>
    private static async Task<List<(WebSocketOpcode Opcode, byte First)>> ReadFramesAsync(PipeReader reader, int count)
    {
        var frames = new List<(WebSocketOpcode, byte)>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        while (frames.Count < count)
        {
            var result = await reader.ReadAsync(cts.Token);
            var buffer = result.Buffer;
            while (FrameHeader.TryParse(buffer, out var header) == FrameHeaderStatus.Complete &&
                   buffer.Length >= header.HeaderLength + header.PayloadLength)
            {
                var payload = buffer.Slice(header.HeaderLength, header.PayloadLength);
                frames.Add((header.Opcode, payload.IsEmpty ? (byte)0 : payload.FirstSpan[0]));
                buffer = buffer.Slice(payload.End);
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
            Assert.False(result.IsCompleted && frames.Count < count, "output completed early");
        }

        return frames;
    }

    [Fact]
    public async Task Frame_bound_refuses_then_drains_in_order_and_releases_every_reference()
    {
        var transport = new Transport();
        var connection = new WebSocketConnection(transport, new WebSocketOptions
        {
            MaxOutboundFrames = 4,
            KeepAliveInterval = TimeSpan.Zero,
        });
        var run = connection.RunAsync(new NoHandler(), CancellationToken.None);

        var frames = Enumerable.Range(1, 6).Select(i => Frame((byte)i)).ToArray();

        // The first frame is taken by the writer, which then blocks on the flush: nobody reads the output.
        Assert.True(connection.TryEnqueue(frames[0]));
        await PollAsync(() => connection.FramesQueued == 0);
        for (int i = 1; i <= 4; i++)
        {
            Assert.True(connection.TryEnqueue(frames[i]));
        }

        Assert.False(connection.TryEnqueue(frames[5])); // the fifth waiting frame is over the bound
        Assert.Equal(1, frames[5].RefCount);              // refused: no reference taken
        Assert.Equal(4, connection.FramesQueued);
        Assert.Equal(4L * frames[1].Length, connection.BytesQueued);

        // The peer starts reading: everything arrives in order, and the writer released its references.
        var received = await ReadFramesAsync(transport.ToPeer.Reader, 5);
        Assert.Equal([1, 2, 3, 4, 5], received.Select(f => (int)f.First));
        await PollAsync(() => frames.All(f => f.RefCount == 1));
        Assert.Equal(0, connection.BytesQueued);

        // Room again.
        Assert.True(connection.TryEnqueue(frames[5]));
        Assert.Equal(6, (await ReadFramesAsync(transport.ToPeer.Reader, 1))[0].First);

        connection.Abort();
        await run.WaitAsync(TimeSpan.FromSeconds(5));
        foreach (var frame in frames)
        {
            Assert.Equal(1, frame.RefCount);
            frame.Release();
        }
    }

    [Fact]
    public async Task Byte_bound_refuses_and_close_bypasses_the_bounds_after_queued_frames()
    {
        var transport = new Transport();
        var frame = Frame(9);
        var connection = new WebSocketConnection(transport, new WebSocketOptions
        {
            MaxOutboundBytes = (3 * frame.Length) + 10,
            KeepAliveInterval = TimeSpan.Zero,
            CloseTimeout = TimeSpan.FromSeconds(5),
        });
        var run = connection.RunAsync(new NoHandler(), CancellationToken.None);

        Assert.True(connection.TryEnqueue(frame));
        await PollAsync(() => connection.FramesQueued == 0); // writer blocked in flush
        Assert.True(connection.TryEnqueue(frame));
        Assert.True(connection.TryEnqueue(frame));
        Assert.True(connection.TryEnqueue(frame));
        Assert.False(connection.TryEnqueue(frame)); // 4 × frame > bound
        Assert.Equal(4, frame.RefCount);            // ours + three queued

        connection.Close(4002, "slow consumer");    // queued even though the queue is full
        Assert.False(connection.TryEnqueue(frame)); // closing refuses everything
        var received = await ReadFramesAsync(transport.ToPeer.Reader, 5);
        Assert.Equal(WebSocketOpcode.Close, received[^1].Opcode);
        Assert.All(received.Take(4), f => Assert.Equal(WebSocketOpcode.Binary, f.Opcode));

        // The peer answers the close; the run ends and completes the output.
        byte[] close = Gateway.TestUtilities.RawWebSocketClient.BuildFrame(Gateway.TestUtilities.RawWebSocketClient.OpClose,
            Gateway.TestUtilities.RawWebSocketClient.ClosePayload(4002));
        await transport.ToServer.Writer.WriteAsync(close);
        await run.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal((ushort)4002, connection.CloseStatus);
        Assert.Equal(1, frame.RefCount);
        frame.Release();

        var rest = await transport.ToPeer.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(rest.IsCompleted);
    }

    [Fact]
    public async Task Abort_releases_frames_still_queued()
    {
        var transport = new Transport();
        var connection = new WebSocketConnection(transport, new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero });
        var run = connection.RunAsync(new NoHandler(), CancellationToken.None);
        var frame = Frame(1);
        Assert.True(connection.TryEnqueue(frame));
        await PollAsync(() => connection.FramesQueued == 0);
        for (int i = 0; i < 10; i++)
        {
            Assert.True(connection.TryEnqueue(frame));
        }

        connection.Abort();
        await run.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(1, frame.RefCount);
        Assert.Equal(0, connection.BytesQueued);
        Assert.Null(connection.CloseStatus);
        frame.Release();
    }

    [Fact]
    public async Task Cancelling_the_run_token_aborts()
    {
        var transport = new Transport();
        var connection = new WebSocketConnection(transport, new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero });
        using var cts = new CancellationTokenSource();
        var run = connection.RunAsync(new NoHandler(), cts.Token);
        await cts.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(connection.Closing.IsCancellationRequested);
    }

    [Fact]
    public async Task Deferred_frames_wait_for_Wake_then_go_out_in_one_flush()
    {
        var transport = new Transport();
        var connection = new WebSocketConnection(transport, new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero });
        var run = connection.RunAsync(new NoHandler(), CancellationToken.None);
        var frames = Enumerable.Range(1, 5).Select(i => Frame((byte)i)).ToArray();

        Assert.True(connection.TryEnqueueDeferred(frames[0], out var first));
        Assert.True(connection.TryEnqueueDeferred(frames[1], out var second));
        Assert.True(connection.TryEnqueueDeferred(frames[2], out var third));
        Assert.True(first);   // the producer must wake this connection...
        Assert.False(second); // ...once, however many frames it deferred
        Assert.False(third);

        // Nothing is written while the wake is deferred (the writer would have written within this time otherwise).
        await Task.Delay(100);
        Assert.False(transport.ToPeer.Reader.TryRead(out _));
        Assert.Equal(3, connection.FramesQueued);

        connection.Wake();

        // One flush: the first read sees all three frames at once.
        var read = await transport.ToPeer.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(3 * frames[0].Length, read.Buffer.Length);
        transport.ToPeer.Reader.AdvanceTo(read.Buffer.End);

        // After a wake the next deferred frame needs one again; an immediate enqueue by someone else sends it along.
        Assert.True(connection.TryEnqueueDeferred(frames[3], out var again));
        Assert.True(again);
        Assert.True(connection.TryEnqueue(frames[4]));
        var rest = await ReadFramesAsync(transport.ToPeer.Reader, 2);
        Assert.Equal([4, 5], rest.Select(f => (int)f.First));
        connection.Wake(); // the producer's wake finds nothing left: harmless

        await PollAsync(() => frames.All(f => f.RefCount == 1));
        connection.Abort();
        await run.WaitAsync(TimeSpan.FromSeconds(5));
        foreach (var frame in frames)
        {
            frame.Release();
        }
    }
}
