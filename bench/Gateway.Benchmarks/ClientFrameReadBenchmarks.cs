using System.Buffers;
using BenchmarkDotNet.Attributes;
using Gateway.Benchmarks.Support;
using Gateway.Protocol;

namespace Gateway.Benchmarks;

/// <summary>
/// <see cref="ClientFrameReader.TryRead"/> straight from an (unmasked) message payload, as the session calls it. Must be
/// 0 B: every field of the result is a slice of the payload. Multi-segment cases cut the payload inside string and
/// binary fields, where a pipe block boundary hurts most.
/// </summary>
[MemoryDiagnoser]
public class ClientFrameReadBenchmarks
{
    private ReadOnlySequence<byte> _send;
    private ReadOnlySequence<byte> _sendSplit;
    private ReadOnlySequence<byte> _subscribe;
    private ReadOnlySequence<byte> _subscribeSplit;

    [GlobalSetup]
    public void Setup()
    {
        var send = ClientFrames.Send(7, "general", 100); // 100 content bytes, 163 bytes in all
        _send = new ReadOnlySequence<byte>(send);
        _sendSplit = Segments.Split(send, 8, 40, 100); // cuts inside the chat id, the client message id and the content

        var subscribe = ClientFrames.Subscribe(9, 10); // 10 cursors
        _subscribe = new ReadOnlySequence<byte>(subscribe);
        _subscribeSplit = Segments.Split(subscribe, 12, subscribe.Length / 2, subscribe.Length - 7);

        if (Send() != 100 || SendMultiSegment() != 100 || Subscribe() != SubscribeMultiSegment())
        {
            throw new InvalidOperationException("The benchmark frames did not decode.");
        }
    }

    [Benchmark(Baseline = true)]
    public long Send() => ReadSend(_send);

    [Benchmark]
    public long SendMultiSegment() => ReadSend(_sendSplit);

    /// <summary>Validate the frame, then walk its 10 cursors with <see cref="SubscribeItemReader"/> as the session does.</summary>
    [Benchmark]
    public ulong Subscribe() => ReadSubscribe(_subscribe);

    [Benchmark]
    public ulong SubscribeMultiSegment() => ReadSubscribe(_subscribeSplit);

    private static long ReadSend(in ReadOnlySequence<byte> payload)
    {
        if (ClientFrameReader.TryRead(payload, out var frame) != ReadStatus.Ok)
        {
            Throw();
        }

        return frame.Content.Length;
    }

    private static ulong ReadSubscribe(in ReadOnlySequence<byte> payload)
    {
        if (ClientFrameReader.TryRead(payload, out var frame) != ReadStatus.Ok)
        {
            Throw();
        }

        ulong sum = 0;
        var items = new SubscribeItemReader(frame);
        while (items.TryNext(out var chatId, out ulong afterSeq))
        {
            sum += afterSeq + (ulong)chatId.Length;
        }

        return sum;
    }

    private static void Throw() => throw new InvalidOperationException("The benchmark frame did not decode.");
}
