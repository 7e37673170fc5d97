using Gateway.Protocol;

namespace Gateway.Domain;

/// <summary>Limits and tuning of <see cref="LocalWriteService"/>. Read once, at construction.</summary>
public sealed class WriteServiceOptions
{
    /// <summary>Largest message content in bytes. Default 32 KiB (<see cref="ProtocolConstants.DefaultMaxContentBytes"/>).</summary>
    public int MaxContentBytes { get; set; } = ProtocolConstants.DefaultMaxContentBytes;

    /// <summary>Furthest <c>expiresAt</c> from now, in milliseconds. Default 30 days.</summary>
    public long MaxExpiresInMs { get; set; } = Validation.DefaultMaxExpiresInMs;

    /// <summary>
    /// Most commands taken into one group commit. Default 256: at ~1-2 ms per fsync that is already well over
    /// 100k sends/s per store, and it bounds how long one batch holds the commit loop.
    /// </summary>
    public int MaxBatchSize { get; set; } = 256;

    /// <summary>
    /// Most commands waiting for the commit loop before <see cref="LocalWriteService.SendAsync"/> waits for room.
    /// Default 65,536: 256 full batches, which bounds memory while absorbing bursts.
    /// </summary>
    public int MaxQueuedCommands { get; set; } = 65_536;

    /// <summary>
    /// Called (on the commit loop) when publishing an event fails after its change is durable. The change stays
    /// committed and subscribers repair the gap from the store; this hook is for logging and metrics.
    /// </summary>
    public Action<EventEnvelope, Exception>? OnPublishError { get; set; }
}
