using System.Net;
using Gateway.Cql.Protocol;
using static Gateway.Cql.Tests.RequestFrameTests;

namespace Gateway.Cql.Tests;

/// <summary>Response bodies written out by hand from the spec, decoded.</summary>
public sealed class ResponseDecodingTests
{
    private const string Msg = "0002 6F 6B"; // [string] "ok"

    private static CqlServerException Error(string hex) => CqlResponses.ReadError(Hex(hex), "n1:9042");

    [Theory]
    [InlineData(0x0000, CqlErrorCode.ServerError)]
    [InlineData(0x000A, CqlErrorCode.ProtocolError)]
    [InlineData(0x0100, CqlErrorCode.BadCredentials)]
    [InlineData(0x1001, CqlErrorCode.Overloaded)]
    [InlineData(0x1002, CqlErrorCode.IsBootstrapping)]
    [InlineData(0x1003, CqlErrorCode.TruncateError)]
    [InlineData(0x2000, CqlErrorCode.SyntaxError)]
    [InlineData(0x2100, CqlErrorCode.Unauthorized)]
    [InlineData(0x2200, CqlErrorCode.Invalid)]
    [InlineData(0x2300, CqlErrorCode.ConfigError)]
    public void Spec_9_Codes_without_details_carry_code_and_message(int code, CqlErrorCode expected)
    {
        var e = Error(code.ToString("X8", System.Globalization.CultureInfo.InvariantCulture) + Msg);
        Assert.Equal(expected, e.Code);
        Assert.Equal("ok", e.ServerMessage);
        Assert.Equal("n1:9042", e.Host);
    }

    [Fact]
    public void Spec_9_Unavailable_has_consistency_required_alive()
    {
        var e = Error("00001000" + Msg + "0006 00000003 00000001");
        Assert.Equal((CqlErrorCode.Unavailable, CqlConsistency.LocalQuorum, 3, 1), (e.Code, e.Consistency, e.Required, e.Alive));
    }

    [Fact]
    public void Spec_9_Write_timeout_has_consistency_received_blockfor_write_type()
    {
        var e = Error("00001100" + Msg + "0004 00000001 00000002 0005 " + Convert.ToHexString("BATCH"u8));
        Assert.Equal((CqlErrorCode.WriteTimeout, CqlConsistency.Quorum, 1, 2, "BATCH"), (e.Code, e.Consistency, e.Received, e.BlockFor, e.WriteType));
    }

    [Fact]
    public void Spec_9_Read_timeout_has_consistency_received_blockfor_data_present()
    {
        var e = Error("00001200" + Msg + "0001 00000000 00000001 01");
        Assert.Equal((CqlErrorCode.ReadTimeout, CqlConsistency.One, 0, 1, true), (e.Code, e.Consistency, e.Received, e.BlockFor, e.DataPresent));
    }

    [Fact]
    public void Spec_9_Read_failure_has_the_failure_count_before_data_present()
    {
        var e = Error("00001300" + Msg + "0005 00000001 00000003 00000002 00");
        Assert.Equal((CqlErrorCode.ReadFailure, CqlConsistency.All, 1, 3, 2, false), (e.Code, e.Consistency, e.Received, e.BlockFor, e.FailureCount, e.DataPresent));
    }

    [Fact]
    public void Spec_9_Write_failure_has_the_failure_count_before_write_type()
    {
        var e = Error("00001500" + Msg + "0004 00000001 00000002 00000001 0003 " + Convert.ToHexString("CAS"u8));
        Assert.Equal((CqlErrorCode.WriteFailure, 1, 2, 1, "CAS"), (e.Code, e.Received, e.BlockFor, e.FailureCount, e.WriteType));
    }

    [Fact]
    public void Spec_9_Function_failure_has_keyspace_function_argument_types()
    {
        var e = Error("00001400" + Msg + "0002 6B73 0001 66 0002 0003 696E74 0004 74657874");
        Assert.Equal((CqlErrorCode.FunctionFailure, "ks", "f"), (e.Code, e.Keyspace, e.Function));
        Assert.Equal(["int", "text"], e.ArgumentTypes);
    }

    [Fact]
    public void Spec_9_Already_exists_has_keyspace_and_table()
    {
        var e = Error("00002400" + Msg + "0002 6B73 0000");
        Assert.Equal((CqlErrorCode.AlreadyExists, "ks", ""), (e.Code, e.Keyspace, e.Table));
    }

    [Fact]
    public void Spec_9_Unprepared_has_the_unknown_id()
    {
        var e = Error("00002500" + Msg + "0003 010203");
        Assert.Equal(CqlErrorCode.Unprepared, e.Code);
        Assert.Equal(new byte[] { 1, 2, 3 }, e.UnpreparedId.ToArray());
    }

    [Fact]
    public void Spec_2_2_Tracing_warning_and_custom_payload_precede_the_result_in_that_order()
    {
        var body = Hex("00112233445566778899AABBCCDDEEFF" + "0001 0004 7761726E" + "0001 0001 6B 00000002 BEEF" + "00000001");
        using var result = CqlResponses.ReadResult(TestWire.Response(CqlOpcode.Result, body, CqlFrameFlags.Tracing | CqlFrameFlags.Warning | CqlFrameFlags.CustomPayload));
        Assert.Equal(CqlResultKind.Void, result.Kind);
        Assert.Equal(Guid.Parse("00112233-4455-6677-8899-aabbccddeeff"), result.TracingId);
        Assert.Equal(["warn"], result.Warnings);
        Assert.Equal(new byte[] { 0xBE, 0xEF }, result.CustomPayload!["k"]);
    }

    [Fact]
    public void Spec_4_2_5_3_Set_keyspace()
    {
        using var result = CqlResponses.ReadResult(TestWire.Response(CqlOpcode.Result, Hex("00000003 0002 6B73")));
        Assert.Equal((CqlResultKind.SetKeyspace, "ks"), (result.Kind, result.Keyspace));
    }

    [Fact]
    public void Spec_4_2_5_5_Schema_change_of_a_table_and_of_a_function()
    {
        using var table = CqlResponses.ReadResult(TestWire.Response(CqlOpcode.Result, Hex("00000005 0007 43524541544544 0005 5441424C45 0002 6B73 0001 74")));
        Assert.Equal(new CqlSchemaChange("CREATED", "TABLE", "ks", "t", null), table.SchemaChange);
        using var function = CqlResponses.ReadResult(TestWire.Response(CqlOpcode.Result, Hex("00000005 0007 44524F50504544 0008 46554E4354494F4E 0002 6B73 0001 66 0001 0003 696E74")));
        Assert.Equal(("DROPPED", "FUNCTION", "f"), (function.SchemaChange!.ChangeType, function.SchemaChange.Target, function.SchemaChange.Name));
        Assert.Equal(["int"], function.SchemaChange.ArgumentTypes);
    }

    [Fact]
    public void Spec_4_2_5_2_Rows_with_per_column_specs_nested_types_paging_state_and_cells()
    {
        var body = Hex("00000002"
            + "00000002" + "00000004" + "00000002 CAFE"
            + "0002 6B73 0001 74 0001 61 0020 000D"                              // list<varchar>
            + "0002 6B73 0001 74 0001 62 0021 0009 0022 0002"                    // map<int, set<bigint>>
            + "0002 6B73 0001 74 0001 63 0000 0003 466F6F"                       // custom 'Foo'
            + "0002 6B73 0001 74 0001 64 0030 0002 6B73 0001 75 0001 0001 78 0031 0002 0009 000D" // udt ks.u {x: tuple<int, varchar>}
            + "00000001"
            + "0000000D 00000001 00000005 68656C6C6F"
            + "FFFFFFFF"
            + "00000000"
            + "00000002 0102");
        using var result = CqlResponses.ReadResult(TestWire.Response(CqlOpcode.Result, body));
        var rows = result.Rows!;
        Assert.Equal("list<varchar>", rows.Columns[0].Type.ToString());
        Assert.Equal("map<int, set<bigint>>", rows.Columns[1].Type.ToString());
        Assert.Equal("'Foo'", rows.Columns[2].Type.ToString());
        var udt = rows.Columns[3].Type;
        Assert.Equal((CqlTypeCode.Udt, "ks", "u", "x"), (udt.Code, udt.UdtKeyspace, udt.UdtName, udt.FieldNames![0]));
        Assert.Equal("tuple<int, varchar>", udt.Elements![0].ToString());
        Assert.Equal(new byte[] { 0xCA, 0xFE }, rows.PagingState.ToArray());
        Assert.True(rows.HasMorePages);
        Assert.Equal(1, rows.Count);
        Assert.Equal(["hello"], rows.GetTextList(0, 0));
        Assert.True(rows.IsNull(0, 1));
        Assert.False(rows.IsNull(0, 2));
        Assert.True(rows.GetBytes(0, 2).IsEmpty);
        Assert.Equal(new byte[] { 1, 2 }, rows.GetBytes(0, 3).ToArray());
        Assert.Equal(3, rows.IndexOf("d"));
    }

    [Fact]
    public void Spec_8_The_paging_state_outlives_the_disposed_page()
    {
        var result = CqlResponses.ReadResult(TestWire.Response(CqlOpcode.Result, Hex("00000002 00000006 00000001 00000003 010203 00000000")));
        var state = result.Rows!.PagingState;
        result.Dispose();

        // The pooled body went back to the pool; scribble over whatever reuses it.
        for (var i = 0; i < 8; i++)
        {
            System.Buffers.ArrayPool<byte>.Shared.Rent(32).AsSpan().Fill(0xEE);
        }

        Assert.Equal(new byte[] { 1, 2, 3 }, state.ToArray());
    }

    [Fact]
    public void Spec_4_2_5_2_No_metadata_rows_take_the_prepared_result_columns()
    {
        CqlColumn[] known = [new("ks", "t", "n", new CqlType(CqlTypeCode.Int))];
        using var result = CqlResponses.ReadResult(TestWire.Response(CqlOpcode.Result, Hex("00000002 00000004 00000001 00000002 00000004 00000007 00000004 00000008")), known);
        Assert.Same(known, result.Rows!.Columns);
        Assert.Equal((7, 8), (result.Rows.GetInt32(0, 0), result.Rows.GetInt32(1, 0)));
    }

    [Fact]
    public void Spec_4_2_5_4_Prepared_v4_has_pk_indexes_and_result_metadata()
    {
        var body = Hex("00000004" + "0002 ABCD"
            + "00000001 00000002 00000002 0001 0000"
            + "0002 6B73 0001 74" + "0001 61 000D" + "0001 62 0002"
            + "00000001 00000001 0002 6B73 0001 74 0001 63 0004");
        var prepared = CqlResponses.ReadPrepared("SELECT", TestWire.Response(CqlOpcode.Result, body));
        Assert.Equal(new byte[] { 0xAB, 0xCD }, prepared.Id.ToArray());
        Assert.Equal([1, 0], prepared.PartitionKeyIndexes);
        Assert.Equal(["a", "b"], prepared.Variables.Select(v => v.Name));
        Assert.Equal(CqlTypeCode.Bigint, prepared.Variables[1].Type.Code);
        Assert.Equal(("c", CqlTypeCode.Boolean), (prepared.ResultColumns[0].Name, prepared.ResultColumns[0].Type.Code));
    }

    [Fact]
    public void Spec_4_2_4_Supported_is_a_string_multimap_with_scylla_sharding_keys()
    {
        var body = TestWire.Supported(new Dictionary<string, string[]>
        {
            ["SCYLLA_SHARD"] = ["3"],
            ["SCYLLA_NR_SHARDS"] = ["8"],
            ["SCYLLA_SHARDING_ALGORITHM"] = ["biased-token-round-robin"],
            ["SCYLLA_SHARDING_IGNORE_MSB"] = ["12"],
            ["SCYLLA_SHARD_AWARE_PORT"] = ["19042"],
        });
        var map = CqlResponses.ReadSupported(body);
        Assert.Equal("8", map["SCYLLA_NR_SHARDS"][0]);
        Assert.Equal("19042", map["SCYLLA_SHARD_AWARE_PORT"][0]);
        Assert.Equal(5, map.Count);
    }

    [Fact]
    public void Spec_4_2_3_Authenticate_names_the_authenticator()
    {
        Assert.Equal("A", CqlResponses.ReadAuthenticate(Hex("0001 41")));
    }

    [Fact]
    public void Spec_4_2_6_Topology_and_status_events_carry_an_inet()
    {
        var added = CqlResponses.ReadEvent(Hex("000F " + Convert.ToHexString("TOPOLOGY_CHANGE"u8) + "0008 " + Convert.ToHexString("NEW_NODE"u8) + "04 0A000001 00002352"));
        Assert.Equal(CqlClusterEventKind.NodeAdded, added.Kind);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("10.0.0.1"), 9042), added.Node);
        var down = CqlResponses.ReadEvent(Hex("000D " + Convert.ToHexString("STATUS_CHANGE"u8) + "0004 " + Convert.ToHexString("DOWN"u8) + "10 00000000000000000000000000000001 00002352"));
        Assert.Equal((CqlClusterEventKind.NodeDown, IPAddress.IPv6Loopback), (down.Kind, down.Node!.Address));
        var schema = CqlResponses.ReadEvent(Hex("000D " + Convert.ToHexString("SCHEMA_CHANGE"u8) + "0007 " + Convert.ToHexString("UPDATED"u8) + "0008 " + Convert.ToHexString("KEYSPACE"u8) + "0002 6B73"));
        Assert.Equal(new CqlSchemaChange("UPDATED", "KEYSPACE", "ks", null, null), schema.SchemaChange);
    }
}
