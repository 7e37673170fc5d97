using System.Buffers;
using System.Text;
using BenchmarkDotNet.Attributes;
using Gateway.Cql;
using Gateway.Cql.Protocol;

namespace Gateway.Benchmarks;

/// <summary>
/// The CQL client's codec on the shapes of our Scylla store (src/Gateway.Storage.Scylla): the message INSERT is
/// <c>INSERT INTO messages (tenant_id, chat_id, bucket, seq, message_id, sender_id, sent_at, content_type, content,
/// expires_at, client_message_id) VALUES (?, ...) USING TTL ? AND TIMESTAMP ?</c>, 13 bound values (text, bigint,
/// timestamp, a 200-byte blob, int), partition key (tenant_id, chat_id, bucket).
/// </summary>
internal static class CqlShapes
{
    public const int ContentBytes = 200;

    public static readonly byte[] PreparedId = Convert.FromHexString("5D41402ABC4B2A76B9719D911017C592");

    public static CqlColumn[] InsertMessageVariables()
    {
        CqlColumn C(string name, CqlTypeCode code) => new("chat", "messages", name, CqlTypes.Of(code));
        return
        [
            C("tenant_id", CqlTypeCode.Varchar), C("chat_id", CqlTypeCode.Varchar), C("bucket", CqlTypeCode.Bigint),
            C("seq", CqlTypeCode.Bigint), C("message_id", CqlTypeCode.Varchar), C("sender_id", CqlTypeCode.Varchar),
            C("sent_at", CqlTypeCode.Timestamp), C("content_type", CqlTypeCode.Varchar), C("content", CqlTypeCode.Blob),
            C("expires_at", CqlTypeCode.Timestamp), C("client_message_id", CqlTypeCode.Varchar),
            C("[ttl]", CqlTypeCode.Int), C("[timestamp]", CqlTypeCode.Bigint),
        ];
    }

    /// <summary>The message columns as the store selects them: seq, message_id, sender_id, sent_at, content_type,
    /// content, expires_at, client_message_id.</summary>
    public static CqlColumn[] MessageColumns()
    {
        CqlColumn C(string name, CqlTypeCode code) => new("chat", "messages", name, CqlTypes.Of(code));
        return
        [
            C("seq", CqlTypeCode.Bigint), C("message_id", CqlTypeCode.Varchar), C("sender_id", CqlTypeCode.Varchar),
            C("sent_at", CqlTypeCode.Timestamp), C("content_type", CqlTypeCode.Varchar), C("content", CqlTypeCode.Blob),
            C("expires_at", CqlTypeCode.Timestamp), C("client_message_id", CqlTypeCode.Varchar),
        ];
    }

    public static CqlValue[] InsertMessageValues(long seq)
    {
        var content = new byte[ContentBytes];
        content.AsSpan().Fill((byte)'x');
        return
        [
            "tenant-0001", "chat-0000000042", 7L, seq, "01JD6V4Q8ZK3M2N5P7R9S1T3V5", "user-0000017",
            CqlValue.Timestamp(1_732_000_000_000 + seq), "text/plain", CqlValue.Blob(content), CqlValue.Null,
            "6f1c2d9e-3b7a-4e55-9c10-8a2b4d6e0f13", 0, 1_732_000_000_000_000L + seq,
        ];
    }
}

/// <summary>
/// Encoding requests into the client's pooled <c>CqlFrameBuilder</c> (reset and reused, as a connection's builder is):
/// an EXECUTE of the message INSERT with its 13 values, and a BATCH of 8 of them. Must be 0 B.
/// </summary>
[MemoryDiagnoser]
public class CqlEncodeBenchmarks
{
    private readonly CqlFrameBuilder _frame = new(4096);
    private CqlColumn[] _variables = null!;
    private CqlValue[] _values = null!;
    private CqlBatch _batch = null!;
    private CqlQueryParameters _parameters;

    [GlobalSetup]
    public void Setup()
    {
        _variables = CqlShapes.InsertMessageVariables();
        _values = CqlShapes.InsertMessageValues(1);
        var prepared = new CqlPrepared("INSERT INTO chat.messages ...", CqlShapes.PreparedId, _variables, [0, 1, 2], []);
        _batch = new CqlBatch(CqlBatchType.Logged);
        for (var i = 0; i < 8; i++)
        {
            _batch.Add(prepared, CqlShapes.InsertMessageValues(i));
        }

        // What CqlCluster.ExecuteAsync passes for a write with default options: LOCAL_QUORUM, LOCAL_SERIAL, page size 5000.
        _parameters = new CqlQueryParameters(CqlConsistency.LocalQuorum, CqlConsistency.LocalSerial, 5000);
    }

    [GlobalCleanup]
    public void Cleanup() => _frame.Dispose();

    [Benchmark(Baseline = true)]
    public int Execute()
    {
        _frame.Reset();
        CqlRequests.WriteExecute(_frame, CqlShapes.PreparedId, _variables, _values, _parameters);
        return _frame.Length;
    }

    [Benchmark]
    public int Batch8()
    {
        _frame.Reset();
        CqlRequests.WriteBatch(_frame, _batch, CqlConsistency.LocalQuorum, null, null);
        return _frame.Length;
    }
}

/// <summary>
/// Decoding a Rows RESULT page of the messages table (8 columns, a 200-byte content, expires_at null) and reading every
/// cell: bigint/timestamp as long, text and blob as spans, expires_at as a null check. <c>CopyOnly</c> is the copy of
/// the page into a rented buffer that every run pays (the connection's own copy out of the socket pipe; the decoder
/// owns the buffer and returns it on dispose), so the decode's own share is the difference. Allocation must not grow
/// with <see cref="Rows"/>: only per-page objects (result, rows, and with metadata the column specs).
/// </summary>
[MemoryDiagnoser]
public class CqlRowsBenchmarks
{
    private byte[] _page = null!;
    private CqlColumn[] _columns = null!;

    [Params(50, 500)]
    public int Rows { get; set; }

    /// <summary>False: No_metadata, what a prepared SELECT gets (EXECUTE with skip_metadata; the columns come from
    /// PREPARE). True: the server sends the column specs (QUERY, or a page without skip_metadata).</summary>
    [Params(false, true)]
    public bool Metadata { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _columns = CqlShapes.MessageColumns();
        using var b = new CqlFrameBuilder(Rows * 400);
        b.WriteInt((int)CqlResultKind.Rows);
        b.WriteInt(Metadata ? 0x0001 : 0x0004);   // Global_tables_spec, or No_metadata
        b.WriteInt(_columns.Length);
        if (Metadata)
        {
            b.WriteString("chat");
            b.WriteString("messages");
            foreach (var c in _columns)
            {
                b.WriteString(c.Name);
                b.WriteShort((ushort)c.Type.Code);
            }
        }

        b.WriteInt(Rows);
        var content = new byte[CqlShapes.ContentBytes];
        content.AsSpan().Fill((byte)'x');
        for (var r = 0; r < Rows; r++)
        {
            CqlRequests.WriteValue(b, CqlValue.BigInt(1000 + r), null, "seq");
            CqlRequests.WriteValue(b, CqlValue.Text($"01JD6V4Q8ZK3M2N5P7R9S{r:D5}"), null, "message_id");
            CqlRequests.WriteValue(b, CqlValue.Text("user-0000017"), null, "sender_id");
            CqlRequests.WriteValue(b, CqlValue.Timestamp(1_732_000_000_000 + r), null, "sent_at");
            CqlRequests.WriteValue(b, CqlValue.Text("text/plain"), null, "content_type");
            CqlRequests.WriteValue(b, CqlValue.Blob(content), null, "content");
            CqlRequests.WriteValue(b, CqlValue.Null, null, "expires_at");
            CqlRequests.WriteValue(b, CqlValue.Text($"6f1c2d9e-3b7a-4e55-9c10-8a2b4d6{r:D5}"), null, "client_message_id");
        }

        _page = b.WrittenSpan.ToArray();

        // Check once that the page reads back as written (otherwise the numbers would be void).
        if (DecodeAndRead() != Expected())
        {
            throw new InvalidOperationException("The benchmark page did not decode as written.");
        }
    }

    [Benchmark(Baseline = true)]
    public int CopyOnly()
    {
        var body = ArrayPool<byte>.Shared.Rent(_page.Length);
        _page.CopyTo(body, 0);
        var first = body[0];
        ArrayPool<byte>.Shared.Return(body);
        return first;
    }

    [Benchmark]
    public long DecodeAndRead()
    {
        var body = ArrayPool<byte>.Shared.Rent(_page.Length);
        _page.CopyTo(body, 0);
        using var result = CqlResponses.ReadResult(new CqlResponseFrame(CqlOpcode.Result, CqlFrameFlags.None, 1, body, _page.Length), Metadata ? null : _columns);
        var rows = result.Rows!;
        long sum = 0;
        for (var r = 0; r < rows.Count; r++)
        {
            sum += rows.GetInt64(r, 0);
            sum += rows.GetBytes(r, 1).Length;
            sum += rows.GetBytes(r, 2).Length;
            sum += rows.GetInt64(r, 3);
            sum += rows.GetBytes(r, 4).Length;
            sum += rows.GetBytes(r, 5).Length;
            sum += rows.IsNull(r, 6) ? 0 : rows.GetInt64(r, 6);
            sum += rows.GetBytes(r, 7).Length;
        }

        return sum;
    }

    private long Expected()
    {
        long sum = 0;
        for (var r = 0; r < Rows; r++)
        {
            sum += 1000 + r + 26 + Encoding.UTF8.GetByteCount("user-0000017") + 1_732_000_000_000 + r + 10 + CqlShapes.ContentBytes + 36;
        }

        return sum;
    }
}

/// <summary>
/// Routing a request: the Murmur3 token of the composite partition key (tenant_id, chat_id, bucket) as the server
/// computes it (each component as [short length][bytes][0x00]), and the whole client step (build the routing key from
/// the bound values, hash, pick the Scylla shard).
/// </summary>
[MemoryDiagnoser]
public class CqlTokenBenchmarks
{
    private readonly CqlFrameBuilder _scratch = new(64);
    private readonly CqlFrameBuilder _key = new(64);
    private readonly int[] _partitionKey = [0, 1, 2];
    private CqlColumn[] _variables = null!;
    private CqlValue[] _values = null!;
    private byte[] _routingKey = null!;

    [GlobalSetup]
    public void Setup()
    {
        _variables = CqlShapes.InsertMessageVariables();
        _values = CqlShapes.InsertMessageValues(1);
        if (!CqlRequests.WriteRoutingKey(_scratch, _key, _partitionKey, _variables, _values))
        {
            throw new InvalidOperationException("No routing key.");
        }

        _routingKey = _key.WrittenSpan.ToArray();   // 2+11+1 + 2+15+1 + 2+8+1 = 43 bytes
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _scratch.Dispose();
        _key.Dispose();
    }

    [Benchmark(Baseline = true)]
    public long Token() => Murmur3.Token(_routingKey);

    [Benchmark]
    public int RoutingKeyTokenShard()
    {
        CqlRequests.WriteRoutingKey(_scratch, _key, _partitionKey, _variables, _values);
        return ScyllaSharding.ShardOf(Murmur3.Token(_key.WrittenSpan), 14, 12);
    }
}
