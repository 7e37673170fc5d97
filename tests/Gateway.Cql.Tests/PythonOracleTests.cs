using System.Diagnostics;
using Gateway.Cql.Protocol;

namespace Gateway.Cql.Tests;

/// <summary>
/// Our request frames against the same requests encoded by the DataStax Python driver's own message classes
/// (cassandra.protocol, python3-cassandra). The driver's value serializers (cassandra.cqltypes) encode the bound
/// values there, so the value encoding is checked independently too.
/// </summary>
public sealed class PythonOracleTests
{
    private const string Python = "/usr/bin/python3";

    private const string Script = """
        import sys, uuid
        from cassandra.protocol import (ProtocolHandler, QueryMessage, PrepareMessage, ExecuteMessage, BatchMessage,
            StartupMessage, OptionsMessage, RegisterMessage, AuthResponseMessage, _UNSET_VALUE)
        from cassandra.cqltypes import LongType, Int32Type, UTF8Type, BooleanType, UUIDType, DateType, BytesType, SetType, ListType
        from cassandra.query import BatchType
        V = 4
        def enc(m, stream=0):
            print(ProtocolHandler.encode_message(m, stream, V, None, False).hex())
        enc(StartupMessage(cqlversion='3.0.0', options={}))
        enc(OptionsMessage())
        enc(RegisterMessage(event_list=['TOPOLOGY_CHANGE', 'STATUS_CHANGE', 'SCHEMA_CHANGE']))
        enc(AuthResponseMessage(b'\x00cassandra\x00s3cr\xc3\xa9t'))
        enc(PrepareMessage('SELECT * FROM ks.t WHERE id = ?'))
        enc(QueryMessage('SELECT * FROM system.local', 6, serial_consistency_level=9, fetch_size=5000, paging_state=b'\x01\x02', timestamp=1700000000000000))
        enc(QueryMessage('TRUNCATE ks.t', 1))
        u = uuid.UUID('01234567-89ab-cdef-0123-456789abcdef')
        params = [LongType.serialize(-5, V), Int32Type.serialize(7, V), UTF8Type.serialize('h\u00e9llo', V), BooleanType.serialize(True, V),
                  UUIDType.serialize(u, V), DateType.serialize(1234567890123, V), BytesType.serialize(b'\x00\xff', V),
                  SetType.apply_parameters([UTF8Type]).serialize(['a', 'b'], V), ListType.apply_parameters([UTF8Type]).serialize([], V), None, _UNSET_VALUE]
        # skip_meta is not turned into the 0x02 flag by this driver's encoder; the hand vector of §4.1.6 covers that flag.
        enc(ExecuteMessage(b'\xde\xad\xbe\xef', params, 4, serial_consistency_level=8, fetch_size=100))
        enc(BatchMessage(BatchType.UNLOGGED, [(True, b'\xde\xad', [Int32Type.serialize(1, V)]), (False, 'UPDATE ks.t SET a = 1', [])], 10, serial_consistency_level=9, timestamp=42))
        enc(BatchMessage(BatchType.COUNTER, [(False, 'UPDATE c', [])], 1))
        """;

    private static CqlColumn Col(string name, CqlTypeCode code, CqlType? element = null) =>
        new("ks", "t", name, element is null ? new CqlType(code) : new CqlType(code, Elements: [element]));

    private static IEnumerable<byte[]> Ours()
    {
        using var b = new CqlFrameBuilder(64);
        byte[] Take(Action<CqlFrameBuilder> write)
        {
            b.Reset();
            write(b);
            return b.WrittenSpan.ToArray();
        }

        yield return Take(CqlRequests.WriteStartup);
        yield return Take(CqlRequests.WriteOptions);
        yield return Take(x => CqlRequests.WriteRegister(x, ["TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE"]));
        yield return Take(x => CqlRequests.WriteAuthResponse(x, "cassandra", "s3crét"));
        yield return Take(x => CqlRequests.WritePrepare(x, "SELECT * FROM ks.t WHERE id = ?"));
        yield return Take(x => CqlRequests.WriteQuery(x, "SELECT * FROM system.local", [], new CqlQueryParameters(CqlConsistency.LocalQuorum, CqlConsistency.LocalSerial, 5000, new byte[] { 1, 2 }, 1700000000000000)));
        yield return Take(x => CqlRequests.WriteQuery(x, "TRUNCATE ks.t", [], new CqlQueryParameters(CqlConsistency.One)));
        var text = new CqlType(CqlTypeCode.Varchar);
        CqlColumn[] variables =
        [
            Col("a", CqlTypeCode.Bigint), Col("b", CqlTypeCode.Int), Col("c", CqlTypeCode.Varchar), Col("d", CqlTypeCode.Boolean),
            Col("e", CqlTypeCode.Uuid), Col("f", CqlTypeCode.Timestamp), Col("g", CqlTypeCode.Blob), Col("h", CqlTypeCode.Set, text),
            Col("i", CqlTypeCode.List, text), Col("j", CqlTypeCode.Int), Col("k", CqlTypeCode.Int),
        ];
        CqlValue[] values =
        [
            CqlValue.BigInt(-5), 7, "héllo", true, CqlValue.Uuid(Guid.Parse("01234567-89ab-cdef-0123-456789abcdef")),
            CqlValue.Timestamp(1234567890123), new byte[] { 0x00, 0xFF }, CqlValue.TextList(["a", "b"]), CqlValue.TextList([]), CqlValue.Null, CqlValue.Unset,
        ];
        yield return Take(x => CqlRequests.WriteExecute(x, new byte[] { 0xDE, 0xAD, 0xBE, 0xEF }, variables, values, new CqlQueryParameters(CqlConsistency.Quorum, CqlConsistency.Serial, 100)));
        var prepared = new CqlPrepared("UPDATE", new byte[] { 0xDE, 0xAD }, [Col("x", CqlTypeCode.Int)], [], []);
        yield return Take(x => CqlRequests.WriteBatch(x, new CqlBatch(CqlBatchType.Unlogged).Add(prepared, 1).Add("UPDATE ks.t SET a = 1"), CqlConsistency.LocalOne, CqlConsistency.LocalSerial, 42));
        yield return Take(x => CqlRequests.WriteBatch(x, new CqlBatch(CqlBatchType.Counter).Add("UPDATE c"), CqlConsistency.One, null, null));
    }

    internal static string? Unavailable()
    {
        if (!File.Exists(Python))
        {
            return $"{Python} is missing; test.sh installs python3-cassandra";
        }

        var probe = new ProcessStartInfo(Python, ["-c", "import cassandra.protocol"]) { RedirectStandardError = true };
        using var p = Process.Start(probe)!;
        p.StandardError.ReadToEnd();
        p.WaitForExit();
        return p.ExitCode == 0 ? null : $"{Python} lacks the cassandra module (python3-cassandra); test.sh installs it";
    }

    [PythonOracleFact]
    public void Every_request_kind_encodes_byte_for_byte_like_the_datastax_python_driver()
    {
        var start = new ProcessStartInfo(Python) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-");
        using var process = Process.Start(start)!;
        process.StandardInput.Write(Script);
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEnd();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, error);
        var theirs = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var ours = Ours().Select(Convert.ToHexStringLower).ToArray();
        Assert.Equal(theirs.Length, ours.Length);
        for (var i = 0; i < ours.Length; i++)
        {
            Assert.True(theirs[i] == ours[i], $"request #{i}:\n python {theirs[i]}\n ours   {ours[i]}");
        }
    }
}

/// <summary>A fact skipped, with the reason, where the Python driver is not installed (xunit 2 has no runtime skip).</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class PythonOracleFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> Reason = new(PythonOracleTests.Unavailable);

    public PythonOracleFactAttribute()
    {
        if (Reason.Value is { } reason)
        {
            Skip = reason;
        }
    }
}
