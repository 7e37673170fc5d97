using System.Buffers;

namespace Gateway.Protocol;

/// <summary>
/// A parsed client frame: scalars plus slices of the payload it was read from. It copies nothing, so
/// every slice is valid only as long as the payload (for a frame read from a pipe: until <c>AdvanceTo</c>).
/// Which fields are set depends on <see cref="Type"/>; see <c>proto/PROTOCOL.md</c>.
/// </summary>
public readonly struct ClientFrame
{
    /// <summary>The frame's type tag.</summary>
    public FrameType Type { get; init; }

    /// <summary>The client's request id, echoed in the answer (all client frames).</summary>
    public uint RequestId { get; init; }

    /// <summary>UTF-8 chat id (Send, History, Typing).</summary>
    public ReadOnlySequence<byte> ChatId { get; init; }

    /// <summary>UTF-8 client message id, the idempotency key (Send).</summary>
    public ReadOnlySequence<byte> ClientMessageId { get; init; }

    /// <summary>UTF-8 content type (Send).</summary>
    public ReadOnlySequence<byte> ContentType { get; init; }

    /// <summary>Content bytes (Send).</summary>
    public ReadOnlySequence<byte> Content { get; init; }

    /// <summary>Expiry as Unix milliseconds, or null (Send).</summary>
    public long? ExpiresAt { get; init; }

    /// <summary>
    /// Send: the UTF-8 W3C <c>traceparent</c> of the optional 8th element; empty when absent, nil or not a str. Not
    /// validated here: see <see cref="TraceContext.TryRead"/>.
    /// </summary>
    public ReadOnlySequence<byte> TraceParent { get; init; }

    /// <summary>Send: the UTF-8 W3C <c>tracestate</c> of the optional 9th element; empty when absent, nil or not a str.</summary>
    public ReadOnlySequence<byte> TraceState { get; init; }

    /// <summary>History: return messages with seq below this; 0 means from the newest.</summary>
    public ulong BeforeSeq { get; init; }

    /// <summary>History: the most messages to return.</summary>
    public uint Limit { get; init; }

    /// <summary>RefreshToken: the new token (UTF-8 JWT).</summary>
    public ReadOnlySequence<byte> Token { get; init; }

    /// <summary>Subscribe/Unsubscribe: number of entries in <see cref="Items"/>.</summary>
    public int ItemCount { get; init; }

    /// <summary>Subscribe/Unsubscribe: the raw MessagePack entries; read them with <see cref="SubscribeItemReader"/>.</summary>
    public ReadOnlySequence<byte> Items { get; init; }
}
