using System.Buffers;
using System.IO.Pipelines;
using Gateway.Protocol;
using Gateway.WebSockets;

namespace Gateway.Benchmarks.Support;

/// <summary>
/// The real receive path without a socket (Garnet's "embedded" style): a <see cref="WebSocketConnection"/> whose input
/// pipe this fixture fills with masked binary frames, each carrying a chatgw.v1 Send, and whose handler decodes every
/// message with <see cref="ClientFrameReader.TryRead"/> as the server's session does first.
/// </summary>
/// <remarks>
/// The input pipe resumes its reader inline (<see cref="PipeScheduler.Inline"/>), so <see cref="PushBatch"/> runs the
/// receive loop on the calling thread: header parse, unmask, handler, AdvanceTo, all measured on the benchmark thread.
/// (Kestrel resumes it on the thread pool; that hop is a transport cost, not protocol work, and is left out here.)
/// </remarks>
internal sealed class InboundFixture : IAsyncDisposable
{
    private readonly Pipe _input;
    private readonly Pipe _output;
    private readonly WebSocketConnection _connection;
    private readonly CountingHandler _handler = new();
    private readonly byte[] _batch;
    private readonly int _framesPerBatch;
    private readonly Task _run;
    private readonly Task _drain;

    public InboundFixture(int framesPerBatch, int contentBytes = 100)
    {
        _framesPerBatch = framesPerBatch;
        var frame = ClientFrames.Mask(ClientFrames.Send(7, "general", contentBytes));
        _batch = new byte[frame.Length * framesPerBatch];
        for (int i = 0; i < framesPerBatch; i++)
        {
            frame.CopyTo(_batch, i * frame.Length);
        }

        FrameBytes = frame.Length;

        // The pause threshold sits far above one batch, so a flush never waits for the reader.
        _input = new Pipe(new PipeOptions(BlockMemoryPool.Instance, readerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: 1024 * 1024, resumeWriterThreshold: 512 * 1024,
            minimumSegmentSize: BlockMemoryPool.BlockSize, useSynchronizationContext: false));
        _output = new Pipe(new PipeOptions(BlockMemoryPool.Instance, minimumSegmentSize: BlockMemoryPool.BlockSize,
            useSynchronizationContext: false));
        _connection = new WebSocketConnection(new DuplexPipe(_input.Reader, _output.Writer),
            new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero });
        _run = _connection.RunAsync(_handler, CancellationToken.None);
        _drain = DrainAsync(_output.Reader);
    }

    /// <summary>Bytes of one masked frame (header + Send payload).</summary>
    public int FrameBytes { get; }

    /// <summary>Frames the handler decoded successfully.</summary>
    public long Decoded => _handler.Ok;

    /// <summary>
    /// Copies one batch of masked frames into the input pipe (what a socket read does) and flushes; the receive loop
    /// runs inline and has handled every frame when this returns. Batches of many frames span several 4 KiB blocks, so
    /// some frames arrive split across segments.
    /// </summary>
    public void PushBatch()
    {
        long before = _handler.Ok;
        var writer = _input.Writer;
        // Block by block, as a socket receives into 4 KiB blocks: frames straddle blocks, as they do in Kestrel.
        ReadOnlySpan<byte> left = _batch;
        while (!left.IsEmpty)
        {
            var span = writer.GetSpan(1);
            int n = Math.Min(span.Length, left.Length);
            left[..n].CopyTo(span);
            writer.Advance(n);
            left = left[n..];
        }

        var flush = writer.FlushAsync();
        if (!flush.IsCompletedSuccessfully || _handler.Ok - before != _framesPerBatch)
        {
            ThrowNotHandledInline(_handler.Ok - before);
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        _connection.Abort();
        await _input.Writer.CompleteAsync().ConfigureAwait(false);
        await _run.WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        await _drain.WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
    }

    private void ThrowNotHandledInline(long handled) =>
        throw new InvalidOperationException(
            $"Expected {_framesPerBatch} frames handled inline, got {handled} (bad frames: {_handler.Bad}, close: {_connection.CloseStatus}).");

    private static async Task DrainAsync(PipeReader reader)
    {
        while (true)
        {
            var result = await reader.ReadAsync().ConfigureAwait(false);
            reader.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                await reader.CompleteAsync().ConfigureAwait(false);
                return;
            }
        }
    }

    /// <summary>Decodes each message as the session does, and keeps a checksum so the work cannot be optimized away.</summary>
    private sealed class CountingHandler : IWebSocketMessageHandler
    {
        public long Ok;
        public long Bad;
        public long ContentBytes;

        public ValueTask OnMessageAsync(WebSocketConnection connection, ReadOnlySequence<byte> payload)
        {
            if (ClientFrameReader.TryRead(payload, out var frame) == ReadStatus.Ok && frame.Type == FrameType.Send)
            {
                Ok++;
                ContentBytes += frame.Content.Length;
            }
            else
            {
                Bad++;
            }

            return default;
        }
    }
}
