using BenchmarkDotNet.Attributes;
using Gateway.Domain;
using Gateway.Server.Fanout;

namespace Gateway.Benchmarks;

/// <summary>
/// What the gateway does once per committed message, whatever the number of subscribers: rent a pooled
/// <c>OutboundFrame</c>, write the Message frame (MessagePack) into it, seal the WebSocket header in front, and release
/// it. Must be 0 B: the frame object and its byte array both come from pools.
/// </summary>
[MemoryDiagnoser]
public class FanoutEncodeBenchmarks
{
    private ChatMessage _message = null!;

    /// <summary>Content bytes: a short text, and a 4 KiB payload (e.g. a small encrypted attachment key bundle).</summary>
    [Params(100, 4096)]
    public int ContentBytes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var content = new byte[ContentBytes];
        content.AsSpan().Fill((byte)'x');
        _message = new ChatMessage("bench", "general", 123_456, "01JD6V4Q8ZK3M2N5P7R9S1T3V5", "user-0000",
            1_732_000_000_000, "text/plain", content, null, "6f1c2d9e-3b7a-4e55-9c10-8a2b4d6e0f13");
    }

    [Benchmark]
    public int BuildAndRelease()
    {
        var frame = MessageFrames.Build(_message);
        int length = frame.Length;
        frame.Release();
        return length;
    }
}
