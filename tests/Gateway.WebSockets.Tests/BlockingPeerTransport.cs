using System.Buffers;
using System.IO.Pipelines;
using Gateway.WebSockets.Internal;

namespace Gateway.WebSockets.Tests;

/// <summary>
/// An in-memory transport whose peer reads only when the test says so: the server's output pauses at 1 KiB, so one
/// 2 KB frame blocks the writer's flush until the peer reads. <see cref="FlushBlocked"/> tells the test the moment that
/// happened, so tests synchronise on the event itself rather than on polling or sleeping.
/// </summary>
internal sealed class BlockingPeerTransport : IDuplexPipe
{
    private readonly ObservedWriter _output;

    public BlockingPeerTransport()
    {
        _output = new ObservedWriter(ToPeer.Writer);
    }

    /// <summary>Peer → server bytes.</summary>
    public Pipe ToServer { get; } = new();

    /// <summary>Server → peer bytes, with a 1 KiB pause threshold.</summary>
    public Pipe ToPeer { get; } = new(new PipeOptions(pauseWriterThreshold: 1024, resumeWriterThreshold: 512));

    public PipeReader Input => ToServer.Reader;

    public PipeWriter Output => _output;

    /// <summary>Completes the first time a flush of the server's output has to wait for the peer to read. From then on
    /// the writer pump holds still: anything queued afterwards stays in the connection's queue until the peer reads.</summary>
    public Task FlushBlocked => _output.Blocked.Task;

    /// <summary>Reads server frames from the peer side until <paramref name="count"/> were seen (30 s at most).</summary>
    public async Task<List<(WebSocketOpcode Opcode, byte[] Payload)>> ReadFramesAsync(int count)
    {
        var frames = new List<(WebSocketOpcode, byte[])>();
        var reader = ToPeer.Reader;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (frames.Count < count)
        {
            var result = await reader.ReadAsync(cts.Token);
            var buffer = result.Buffer;
            while (frames.Count < count && FrameHeader.TryParse(buffer, out var header) == FrameHeaderStatus.Complete &&
                   buffer.Length >= header.HeaderLength + header.PayloadLength)
            {
                var payload = buffer.Slice(header.HeaderLength, header.PayloadLength);
                frames.Add((header.Opcode, payload.ToArray()));
                buffer = buffer.Slice(payload.End);
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted && frames.Count < count)
            {
                throw new InvalidOperationException($"output completed after {frames.Count} of {count} frames");
            }
        }

        return frames;
    }

    /// <summary>Passes everything to the pipe's writer; notes the first flush that does not complete at once.</summary>
    private sealed class ObservedWriter(PipeWriter inner) : PipeWriter
    {
        public TaskCompletionSource Blocked { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override void Advance(int bytes) => inner.Advance(bytes);

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            var flush = inner.FlushAsync(cancellationToken);
            if (!flush.IsCompleted)
            {
                Blocked.TrySetResult();
            }

            return flush;
        }
    }
}
