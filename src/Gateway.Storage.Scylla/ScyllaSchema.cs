using System.Globalization;
using System.Text.RegularExpressions;
using Gateway.Cql;

namespace Gateway.Storage.Scylla;

/// <summary>
/// The store's tables, versioned. <c>schema print</c> shows the statements, <c>schema apply</c> runs them (every one is
/// <c>IF NOT EXISTS</c>, so applying twice is harmless) and records the version and bucket size in <c>schema_info</c>;
/// the store refuses to open a keyspace without that row, with another bucket size or with a newer version.
/// </summary>
public static partial class ScyllaSchema
{
    /// <summary>The schema version this code writes and reads. A later version adds a migration step from this one.</summary>
    public const int Version = 1;

    private const string InfoRow = "chatgw";

    /// <summary>Every statement of the current schema, in the order they must run.</summary>
    /// <exception cref="ArgumentException">The keyspace name or replication text is not acceptable.</exception>
    public static IReadOnlyList<string> Statements(ScyllaStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var ks = CheckedKeyspace(options.Keyspace);
        var replication = options.Replication.Trim();
        if (!replication.StartsWith('{') || !replication.EndsWith('}') || replication.Contains(';', StringComparison.Ordinal))
        {
            throw new ArgumentException($"Store:Replication must be a CQL map such as {{'class': 'NetworkTopologyStrategy', 'dc1': 3}}; got {replication}", nameof(options));
        }

        return
        [
            $"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {replication} AND durable_writes = true",
            $"CREATE TABLE IF NOT EXISTS {ks}.schema_info (name text PRIMARY KEY, version int, bucket_size int, applied_at timestamp)",
            // Partitions hold BucketSize seqs each, so a chat's history spreads over the ring and no partition grows
            // without bound; reads walk buckets in order.
            $"CREATE TABLE IF NOT EXISTS {ks}.messages (tenant_id text, chat_id text, bucket bigint, seq bigint, message_id text, sender_id text, sent_at timestamp, content_type text, content blob, expires_at timestamp, client_message_id text, PRIMARY KEY ((tenant_id, chat_id, bucket), seq)) WITH CLUSTERING ORDER BY (seq ASC)",
            $"CREATE TABLE IF NOT EXISTS {ks}.chats (tenant_id text, chat_id text, head bigint, created_at timestamp, PRIMARY KEY ((tenant_id, chat_id)))",
            $"CREATE TABLE IF NOT EXISTS {ks}.members (tenant_id text, chat_id text, user_id text, joined_at timestamp, PRIMARY KEY ((tenant_id, chat_id), user_id))",
            $"CREATE TABLE IF NOT EXISTS {ks}.chats_by_user (tenant_id text, user_id text, chat_id text, joined_at timestamp, PRIMARY KEY ((tenant_id, user_id), chat_id))",
            $"CREATE TABLE IF NOT EXISTS {ks}.idempotency (tenant_id text, sender_id text, client_message_id text, chat_id text, seq bigint, message_id text, sent_at timestamp, digest blob, PRIMARY KEY ((tenant_id, sender_id, client_message_id)))",
            // Receipts (delivered / read up to seq per member) will live here; nothing writes it yet.
            $"CREATE TABLE IF NOT EXISTS {ks}.cursors (tenant_id text, chat_id text, user_id text, delivered_seq bigint, read_seq bigint, PRIMARY KEY ((tenant_id, chat_id), user_id))",
            $"CREATE TABLE IF NOT EXISTS {ks}.projection_checkpoints (log text PRIMARY KEY, position bigint)",
            $"CREATE TABLE IF NOT EXISTS {ks}.projection_leases (log text PRIMARY KEY, owner text)",
        ];
    }

    /// <summary>The statements as a CQL script (what <c>schema print</c> shows).</summary>
    public static string Script(ScyllaStoreOptions options) =>
        string.Concat(Statements(options).Select(s => s + ";\n")) +
        $"INSERT INTO {CheckedKeyspace(options.Keyspace)}.schema_info (name, version, bucket_size, applied_at) VALUES ('{InfoRow}', {Version}, {options.BucketSize.ToString(CultureInfo.InvariantCulture)}, toTimestamp(now())) IF NOT EXISTS;\n";

    /// <summary>Runs every statement and records the version; returns what was found before (0: a new keyspace).</summary>
    /// <exception cref="InvalidOperationException">The keyspace holds a newer schema, or another bucket size.</exception>
    public static async Task<int> ApplyAsync(CqlCluster cluster, ScyllaStoreOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        ArgumentNullException.ThrowIfNull(options);
        var ks = CheckedKeyspace(options.Keyspace);
        var found = await ReadInfoAsync(cluster, ks, cancellationToken).ConfigureAwait(false);
        if (found is { } info)
        {
            Check(info, options);
        }

        foreach (var statement in Statements(options))
        {
            using var _ = await cluster.QueryAsync(statement, null, new CqlStatementOptions { Idempotent = true }, cancellationToken).ConfigureAwait(false);
        }

        using var insert = await cluster.QueryAsync(
            $"INSERT INTO {ks}.schema_info (name, version, bucket_size, applied_at) VALUES (?, ?, ?, ?) IF NOT EXISTS",
            [InfoRow, CqlValue.Int(Version), CqlValue.Int(options.BucketSize), CqlValue.Timestamp(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())],
            new CqlStatementOptions { Idempotent = true },
            cancellationToken).ConfigureAwait(false);
        if (!insert.Applied)
        {
            // Another process applied it first: what it recorded must agree with this configuration too.
            Check(await ReadInfoAsync(cluster, ks, cancellationToken).ConfigureAwait(false) ?? throw new InvalidOperationException("schema_info vanished while applying"), options);
        }

        return found?.Version ?? 0;
    }

    /// <summary>Checks that the keyspace holds this schema version with this bucket size (the store calls it on open).</summary>
    /// <exception cref="InvalidOperationException">Not applied, newer, older, or another bucket size.</exception>
    public static async Task VerifyAsync(CqlCluster cluster, ScyllaStoreOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var info = await ReadInfoAsync(cluster, CheckedKeyspace(options.Keyspace), cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"Keyspace {options.Keyspace} holds no chatgw schema: run `schema apply` first (see docs/OPERATIONS.md)");
        Check(info, options);
        if (info.Version < Version)
        {
            throw new InvalidOperationException($"Keyspace {options.Keyspace} holds schema version {info.Version}; this build needs {Version}: run `schema apply`");
        }
    }

    private static void Check((int Version, int BucketSize) info, ScyllaStoreOptions options)
    {
        if (info.Version > Version)
        {
            throw new InvalidOperationException($"Keyspace {options.Keyspace} holds schema version {info.Version}, newer than this build's {Version}: upgrade the binary");
        }

        if (info.BucketSize != options.BucketSize)
        {
            throw new InvalidOperationException($"Keyspace {options.Keyspace} was created with Store:BucketSize={info.BucketSize}; it cannot change (configured: {options.BucketSize})");
        }
    }

    private static async Task<(int Version, int BucketSize)?> ReadInfoAsync(CqlCluster cluster, string ks, CancellationToken cancellationToken)
    {
        try
        {
            using var result = await cluster.QueryAsync($"SELECT version, bucket_size FROM {ks}.schema_info WHERE name = ?", [InfoRow], new CqlStatementOptions { Idempotent = true }, cancellationToken).ConfigureAwait(false);
            return result.Rows is { Count: > 0 } rows ? (rows.GetInt32(0, 0), rows.GetInt32(0, 1)) : null;
        }
        catch (CqlServerException e) when (e.Code == CqlErrorCode.Invalid)
        {
            // The keyspace or table does not exist yet.
            return null;
        }
    }

    internal static string CheckedKeyspace(string keyspace) =>
        KeyspaceName().IsMatch(keyspace ?? "")
            ? keyspace!.ToLowerInvariant()
            : throw new ArgumentException($"Store:Keyspace must be a letter followed by up to 47 letters, digits or underscores; got '{keyspace}'", nameof(keyspace));

    [GeneratedRegex("^[A-Za-z][A-Za-z0-9_]{0,47}$")]
    private static partial Regex KeyspaceName();
}
