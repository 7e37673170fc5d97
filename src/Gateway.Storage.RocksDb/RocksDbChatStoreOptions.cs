namespace Gateway.Storage.RocksDb;

/// <summary>Tuning of <see cref="RocksDbChatStore"/>.</summary>
public sealed class RocksDbChatStoreOptions
{
    /// <summary>
    /// Size of the LRU block cache. Default 64 MiB: recent history pages (catch-up reads the tail of each chat)
    /// stay in memory without competing with the process for much.
    /// </summary>
    public long BlockCacheBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>
    /// Bloom filter bits per key. Default 10, about 1% false positives: nearly every send looks up an idempotency
    /// key that does not exist, and the filter answers most of those misses without reading a block.
    /// </summary>
    public int BloomBitsPerKey { get; set; } = 10;
}
