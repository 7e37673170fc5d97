using Gateway.Storage.Scylla;

namespace Gateway.Server.Config;

/// <summary>
/// Where a writer keeps its history (<c>--Store:Kind</c>): its own RocksDB projection of the log, or one Scylla keyspace
/// shared by every writer. The other settings of this section are Scylla's.
/// </summary>
public sealed class StoreOptions : ScyllaStoreOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Store";

    /// <summary><c>rocksdb</c> (each writer projects the log into its data directory) or <c>scylla</c> (one projection
    /// into a shared keyspace; writer role only).</summary>
    public string Kind { get; set; } = "rocksdb";

    /// <summary>True for <c>Kind=scylla</c>.</summary>
    public bool IsScylla => string.Equals(Kind, "scylla", StringComparison.OrdinalIgnoreCase);
}
