using System.Buffers;
using System.Collections.Concurrent;

namespace Gateway.Benchmarks.Support;

/// <summary>
/// A pool of fixed 4 KiB blocks for the in-memory transport's pipes, shaped like Kestrel's PinnedBlockMemoryPool (which
/// backs real socket pipes and is internal to Kestrel): blocks come from a lock-free queue and go back to it, whatever
/// thread returns them, and are never dropped.
/// </summary>
/// <remarks>
/// Without it a <see cref="System.IO.Pipelines.Pipe"/> rents its segments from <see cref="ArrayPool{T}.Shared"/>. A
/// writer pump renting on one thread and a drain returning on another overflow that pool's small per-core stacks, and
/// the benchmark would report the test transport's garbage (kilobytes per delivery) instead of the gateway's.
/// </remarks>
internal sealed class BlockMemoryPool : MemoryPool<byte>
{
    /// <summary>Kestrel's block size: one page.</summary>
    public const int BlockSize = 4096;

    private readonly ConcurrentQueue<Block> _blocks = new();

    /// <summary>One pool for every pipe of a process, as Kestrel shares one per transport.</summary>
    public static BlockMemoryPool Instance { get; } = new();

    public override int MaxBufferSize => BlockSize;

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        if (minBufferSize > BlockSize)
        {
            throw new ArgumentOutOfRangeException(nameof(minBufferSize), minBufferSize, "Blocks are 4 KiB.");
        }

        return _blocks.TryDequeue(out var block) ? block : new Block(this);
    }

    protected override void Dispose(bool disposing)
    {
        // Blocks are plain pinned arrays; the GC reclaims them with the pool.
    }

    private sealed class Block(BlockMemoryPool pool) : IMemoryOwner<byte>
    {
        // Pinned like Kestrel's, so a socket could hand them to the OS without pinning per call.
        private readonly byte[] _array = GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true);

        public Memory<byte> Memory => _array;

        public void Dispose() => pool._blocks.Enqueue(this);
    }
}
