using Gateway.Cql.Protocol;

namespace Gateway.Cql.Tests;

/// <summary>Request frames against byte vectors worked out by hand from the spec (sections in the test names).</summary>
public sealed class RequestFrameTests
{
    internal static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal));

    private static byte[] Encode(Action<CqlFrameBuilder> write)
    {
        using var b = new CqlFrameBuilder(16);
        write(b);
        return b.WrittenSpan.ToArray();
    }

    [Fact]
    public void Spec_2_and_4_1_3_Options_is_a_bare_header()
    {
        Assert.Equal(Hex("04 00 0000 05 00000000"), Encode(CqlRequests.WriteOptions));
    }

    [Fact]
    public void Spec_4_1_1_Startup_sends_cql_version_3_0_0_as_a_string_map()
    {
        var expected = Hex("04 00 0000 01 00000016" + "0001" + "000B" + Convert.ToHexString("CQL_VERSION"u8) + "0005" + Convert.ToHexString("3.0.0"u8));
        Assert.Equal(expected, Encode(CqlRequests.WriteStartup));
    }

    [Fact]
    public void Spec_4_1_2_Auth_response_carries_a_sasl_plain_token_as_bytes()
    {
        Assert.Equal(Hex("04 00 0000 0F 00000008" + "00000004" + "00 75 00 70"), Encode(b => CqlRequests.WriteAuthResponse(b, "u", "p")));
    }

    [Fact]
    public void Spec_4_1_8_Register_lists_the_three_event_types()
    {
        var expected = Hex("04 00 0000 0B 00000031" + "0003"
            + "000F" + Convert.ToHexString("TOPOLOGY_CHANGE"u8)
            + "000D" + Convert.ToHexString("STATUS_CHANGE"u8)
            + "000D" + Convert.ToHexString("SCHEMA_CHANGE"u8));
        Assert.Equal(expected, Encode(b => CqlRequests.WriteRegister(b, ["TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE"])));
    }

    [Fact]
    public void Spec_4_1_5_Prepare_is_a_long_string()
    {
        Assert.Equal(Hex("04 00 0000 09 0000000C" + "00000008" + Convert.ToHexString("SELECT 1"u8)), Encode(b => CqlRequests.WritePrepare(b, "SELECT 1")));
    }

    [Fact]
    public void Spec_4_1_4_Query_with_only_a_page_size()
    {
        var expected = Hex("04 00 0000 07 00000013" + "00000008" + Convert.ToHexString("SELECT x"u8) + "0001" + "04" + "00000064");
        Assert.Equal(expected, Encode(b => CqlRequests.WriteQuery(b, "SELECT x", [], new CqlQueryParameters(CqlConsistency.One, PageSize: 100))));
    }

    [Fact]
    public void Spec_4_1_4_Query_with_values_null_unset_paging_state_serial_consistency_and_timestamp()
    {
        var expected = Hex("04 02 0000 07 00000032"
            + "00000001 71"
            + "0006" + "3D"
            + "0004" + "00000004 00000005" + "00000001 61" + "FFFFFFFF" + "FFFFFFFE"
            + "00000032"
            + "00000001 AB"
            + "0009"
            + "0000000000000001");
        var p = new CqlQueryParameters(CqlConsistency.LocalQuorum, CqlConsistency.LocalSerial, 50, new byte[] { 0xAB }, 1, Tracing: true);
        Assert.Equal(expected, Encode(b => CqlRequests.WriteQuery(b, "q", [CqlValue.Int(5), CqlValue.Text("a"), CqlValue.Null, CqlValue.Unset], p)));
    }

    [Fact]
    public void Spec_4_1_6_and_6_Execute_encodes_values_by_the_variable_types()
    {
        var guid = Guid.Parse("00112233-4455-6677-8899-aabbccddeeff");
        CqlColumn[] variables =
        [
            new("ks", "t", "id", new CqlType(CqlTypeCode.Bigint)),
            new("ks", "t", "n", new CqlType(CqlTypeCode.Int)),
            new("ks", "t", "tags", new CqlType(CqlTypeCode.Set, Elements: [new CqlType(CqlTypeCode.Varchar)])),
            new("ks", "t", "u", new CqlType(CqlTypeCode.Timeuuid)),
            new("ks", "t", "b", new CqlType(CqlTypeCode.Boolean)),
            new("ks", "t", "at", new CqlType(CqlTypeCode.Timestamp)),
            new("ks", "t", "x", new CqlType(CqlTypeCode.Blob)),
        ];
        CqlValue[] values = [CqlValue.BigInt(-2), 3, CqlValue.TextList(["a", "bc"]), CqlValue.Uuid(guid), true, CqlValue.Timestamp(1000), CqlValue.Blob(new byte[] { 9 })];
        var body = "0002 0102" + "0001" + "03" + "0007"
            + "00000008 FFFFFFFFFFFFFFFE"
            + "00000004 00000003"
            + "0000000F 00000002 00000001 61 00000002 6263"
            + "00000010 00112233445566778899AABBCCDDEEFF"
            + "00000001 01"
            + "00000008 00000000000003E8"
            + "00000001 09";
        var expected = Hex("04 00 0000 0A " + (Hex(body).Length).ToString("X8", System.Globalization.CultureInfo.InvariantCulture) + body);
        Assert.Equal(expected, Encode(b => CqlRequests.WriteExecute(b, new byte[] { 1, 2 }, variables, values, new CqlQueryParameters(CqlConsistency.One, SkipMetadata: true))));
    }

    [Fact]
    public void Spec_4_1_7_Batch_mixes_prepared_and_plain_statements_with_serial_consistency_and_timestamp()
    {
        var prepared = new CqlPrepared("INSERT k", new byte[] { 0xAA }, [new CqlColumn("ks", "t", "k", new CqlType(CqlTypeCode.Int))], [0], []);
        var batch = new CqlBatch(CqlBatchType.Unlogged).Add(prepared, 7).Add("INSERT");
        var expected = Hex("04 00 0000 0D 0000002B"
            + "01" + "0002"
            + "01 0001 AA 0001 00000004 00000007"
            + "00 00000006 " + Convert.ToHexString("INSERT"u8) + " 0000"
            + "0004" + "30" + "0008" + "000000000000000A");
        Assert.Equal(expected, Encode(b => CqlRequests.WriteBatch(b, batch, CqlConsistency.Quorum, CqlConsistency.Serial, 10)));
    }

    [Fact]
    public void Spec_4_1_7_Counter_batch_without_options_has_zero_flags()
    {
        var batch = new CqlBatch(CqlBatchType.Counter).Add("U");
        Assert.Equal(Hex("04 00 0000 0D 0000000E 02 0001 00 00000001 55 0000 0001 00"), Encode(b => CqlRequests.WriteBatch(b, batch, CqlConsistency.One, null, null)));
    }

    [Fact]
    public void A_value_that_does_not_fit_the_variable_type_names_the_column()
    {
        CqlColumn[] variables = [new("ks", "t", "user_id", new CqlType(CqlTypeCode.Uuid))];
        var e = Assert.Throws<ArgumentException>(() => Encode(b => CqlRequests.WriteExecute(b, new byte[] { 1 }, variables, [CqlValue.Text("nope")], new CqlQueryParameters(CqlConsistency.One))));
        Assert.Contains("user_id", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_wrong_number_of_values_is_rejected()
    {
        CqlColumn[] variables = [new("ks", "t", "a", new CqlType(CqlTypeCode.Int))];
        Assert.Throws<ArgumentException>(() => Encode(b => CqlRequests.WriteExecute(b, new byte[] { 1 }, variables, [], new CqlQueryParameters(CqlConsistency.One))));
    }

    [Fact]
    public void Routing_key_is_raw_for_one_component_and_length_prefixed_with_a_zero_byte_for_a_composite()
    {
        CqlColumn[] variables = [new("ks", "t", "a", new CqlType(CqlTypeCode.Varchar)), new("ks", "t", "b", new CqlType(CqlTypeCode.Int))];
        using var scratch = new CqlFrameBuilder(16);
        using var key = new CqlFrameBuilder(16);
        Assert.True(CqlRequests.WriteRoutingKey(scratch, key, [0], variables, [CqlValue.Text("ab"), 1]));
        Assert.Equal(Hex("6162"), key.WrittenSpan.ToArray());
        Assert.True(CqlRequests.WriteRoutingKey(scratch, key, [1, 0], variables, [CqlValue.Text("ab"), 1]));
        Assert.Equal(Hex("0004 00000001 00" + "0002 6162 00"), key.WrittenSpan.ToArray());
        Assert.False(CqlRequests.WriteRoutingKey(scratch, key, [0], variables, [CqlValue.Null, 1]));
    }
}
