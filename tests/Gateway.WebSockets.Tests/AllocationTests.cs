using System.IO.Pipelines;
using Gateway.TestUtilities;
using Xunit;

namespace Gateway.WebSockets.Tests;

/// <summary>
/// Steady-state receive → handler → OutboundFrame → writer → pipe allocates nothing per frame. Measured over all
/// threads (the loops hop between pool threads), so the bound leaves room for unrelated runtime noise: any real
/// per-frame allocation is at least 24 bytes (the smallest object), far above the 2 bytes per frame allowed.
/// </summary>
[Collection(nameof(NonParallel))]
public class AllocationTests
{
    private sealed class Transport : IDuplexPipe
    {
        private static readonly PipeOptions Inline = new(readerScheduler: PipeScheduler.Inline,
            writerScheduler: PipeScheduler.Inline, useSynchronizationContext: false);

        public Pipe ToServer { get; } = new(Inline);

        public Pipe ToPeer { get; } = new(Inline);

        public PipeReader Input => ToServer.Reader;

        public PipeWriter Output => ToPeer.Writer;
    }

    [Fact]
    public Task Echo_path_allocates_nothing_per_frame() => Task.Run(async () =>
    {
        const int FramesPerRound = 10;
        const int PayloadSize = 100;
        const int Rounds = 5000;
        var transport = new Transport();
        var connection = new WebSocketConnection(transport, new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero });
        var run = connection.RunAsync(WsTestServer.EchoHandler.Instance, CancellationToken.None);

        byte[] round = [.. Enumerable.Range(0, FramesPerRound)
            .SelectMany(_ => RawWebSocketClient.BuildFrame(RawWebSocketClient.OpBinary, new byte[PayloadSize], maskKey: [1, 2, 3, 4]))];
        // Unmasking happens in place in the pipe's buffer, so each round writes a fresh copy from a preallocated set.
        var copies = Enumerable.Range(0, Rounds).Select(_ => (byte[])round.Clone()).ToArray();
        int echoBytes = FramesPerRound * (PayloadSize + 2); // 2-byte server header, no mask

        async Task RunRoundsAsync(int from, int count)
        {
            for (int i = from; i < from + count; i++)
            {
                await transport.ToServer.Writer.WriteAsync(copies[i]).ConfigureAwait(false);
                long got = 0;
                while (got < echoBytes)
                {
                    var result = await transport.ToPeer.Reader.ReadAsync().ConfigureAwait(false);
                    got += result.Buffer.Length;
                    transport.ToPeer.Reader.AdvanceTo(result.Buffer.End);
                }
            }
        }

        await RunRoundsAsync(0, 1000).ConfigureAwait(false); // warm pools and tiered JIT
        long before = GC.GetTotalAllocatedBytes(precise: true);
        await RunRoundsAsync(1000, Rounds - 1000).ConfigureAwait(false);
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        connection.Abort();
        await run.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        Assert.True(allocated < 2L * FramesPerRound * (Rounds - 1000), $"{allocated} bytes allocated for {FramesPerRound * (Rounds - 1000)} frames");
    });
}
