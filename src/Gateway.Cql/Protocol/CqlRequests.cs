using System.Buffers.Binary;
using System.Text;

namespace Gateway.Cql.Protocol;

/// <summary>The &lt;query_parameters&gt; of QUERY and EXECUTE (spec §4.1.4), resolved against the cluster defaults.</summary>
internal readonly record struct CqlQueryParameters(
    CqlConsistency Consistency,
    CqlConsistency? SerialConsistency = null,
    int PageSize = 0,
    ReadOnlyMemory<byte> PagingState = default,
    long? DefaultTimestamp = null,
    bool SkipMetadata = false,
    bool Tracing = false);

/// <summary>Encodes every request this client sends (spec §4.1) into a <see cref="CqlFrameBuilder"/>; stream id 0, patched by the connection.</summary>
internal static class CqlRequests
{
    // Query flags of §4.1.4 (names for values, 0x40, are never sent).
    internal const byte FlagValues = 0x01;
    internal const byte FlagSkipMetadata = 0x02;
    internal const byte FlagPageSize = 0x04;
    internal const byte FlagPagingState = 0x08;
    internal const byte FlagSerialConsistency = 0x10;
    internal const byte FlagDefaultTimestamp = 0x20;

    private static readonly KeyValuePair<string, string>[] StartupOptions = [new("CQL_VERSION", "3.0.0")];

    /// <summary>STARTUP (§4.1.1): CQL_VERSION 3.0.0 and no compression.</summary>
    public static void WriteStartup(CqlFrameBuilder b)
    {
        b.BeginFrame(CqlOpcode.Startup);
        b.WriteStringMap(StartupOptions);
        b.EndFrame();
    }

    /// <summary>AUTH_RESPONSE (§4.1.2) with a SASL PLAIN token: NUL, user, NUL, password.</summary>
    public static void WriteAuthResponse(CqlFrameBuilder b, string username, string password)
    {
        b.BeginFrame(CqlOpcode.AuthResponse);
        var userBytes = Encoding.UTF8.GetByteCount(username);
        var passwordBytes = Encoding.UTF8.GetByteCount(password);
        b.WriteInt(2 + userBytes + passwordBytes);
        b.WriteByte(0);
        Encoding.UTF8.GetBytes(username, b.Grow(userBytes));
        b.WriteByte(0);
        Encoding.UTF8.GetBytes(password, b.Grow(passwordBytes));
        b.EndFrame();
    }

    /// <summary>OPTIONS (§4.1.3): an empty body.</summary>
    public static void WriteOptions(CqlFrameBuilder b)
    {
        b.BeginFrame(CqlOpcode.Options);
        b.EndFrame();
    }

    /// <summary>REGISTER (§4.1.8).</summary>
    public static void WriteRegister(CqlFrameBuilder b, IReadOnlyList<string> events)
    {
        b.BeginFrame(CqlOpcode.Register);
        b.WriteStringList(events);
        b.EndFrame();
    }

    /// <summary>PREPARE (§4.1.5): the query as a [long string].</summary>
    public static void WritePrepare(CqlFrameBuilder b, string query, bool tracing = false)
    {
        b.BeginFrame(CqlOpcode.Prepare, tracing ? CqlFrameFlags.Tracing : CqlFrameFlags.None);
        b.WriteLongString(query);
        b.EndFrame();
    }

    /// <summary>QUERY (§4.1.4); values are encoded by their own kind since the server sent no metadata for them.</summary>
    public static void WriteQuery(CqlFrameBuilder b, string query, ReadOnlySpan<CqlValue> values, in CqlQueryParameters p)
    {
        b.BeginFrame(CqlOpcode.Query, p.Tracing ? CqlFrameFlags.Tracing : CqlFrameFlags.None);
        b.WriteLongString(query);
        WriteParameters(b, values, null, p);
        b.EndFrame();
    }

    /// <summary>EXECUTE (§4.1.6); values are encoded by the types of the prepared statement's variables.</summary>
    public static void WriteExecute(CqlFrameBuilder b, ReadOnlySpan<byte> id, IReadOnlyList<CqlColumn> variables, ReadOnlySpan<CqlValue> values, in CqlQueryParameters p)
    {
        b.BeginFrame(CqlOpcode.Execute, p.Tracing ? CqlFrameFlags.Tracing : CqlFrameFlags.None);
        b.WriteShortBytes(id);
        WriteParameters(b, values, variables, p);
        b.EndFrame();
    }

    /// <summary>BATCH (§4.1.7): prepared statements encode by their variables, plain ones by value kind.</summary>
    public static void WriteBatch(CqlFrameBuilder b, CqlBatch batch, CqlConsistency consistency, CqlConsistency? serialConsistency, long? defaultTimestamp)
    {
        b.BeginFrame(CqlOpcode.Batch);
        b.WriteByte((byte)batch.Type);
        b.WriteShort(checked((ushort)batch.Count));
        var statements = batch.Statements;
        for (var i = 0; i < statements.Count; i++)
        {
            var (prepared, query, values) = statements[i];
            if (prepared is not null)
            {
                b.WriteByte(1);
                b.WriteShortBytes(prepared.Id.Span);
                CheckArity(prepared.Variables, values.Length);
            }
            else
            {
                b.WriteByte(0);
                b.WriteLongString(query!);
            }

            b.WriteShort(checked((ushort)values.Length));
            for (var v = 0; v < values.Length; v++)
            {
                var column = prepared?.Variables[v];
                WriteValue(b, values[v], column?.Type, column?.Name ?? $"#{v}");
            }
        }

        b.WriteConsistency(consistency);
        byte flags = 0;
        if (serialConsistency is not null)
        {
            flags |= FlagSerialConsistency;
        }

        if (defaultTimestamp is not null)
        {
            flags |= FlagDefaultTimestamp;
        }

        b.WriteByte(flags);
        if (serialConsistency is { } serial)
        {
            b.WriteConsistency(serial);
        }

        if (defaultTimestamp is { } ts)
        {
            b.WriteLong(ts);
        }

        b.EndFrame();
    }

    private static void WriteParameters(CqlFrameBuilder b, ReadOnlySpan<CqlValue> values, IReadOnlyList<CqlColumn>? variables, in CqlQueryParameters p)
    {
        if (variables is not null)
        {
            CheckArity(variables, values.Length);
        }

        b.WriteConsistency(p.Consistency);
        byte flags = 0;
        if (values.Length > 0)
        {
            flags |= FlagValues;
        }

        if (p.SkipMetadata)
        {
            flags |= FlagSkipMetadata;
        }

        if (p.PageSize > 0)
        {
            flags |= FlagPageSize;
        }

        if (!p.PagingState.IsEmpty)
        {
            flags |= FlagPagingState;
        }

        if (p.SerialConsistency is not null)
        {
            flags |= FlagSerialConsistency;
        }

        if (p.DefaultTimestamp is not null)
        {
            flags |= FlagDefaultTimestamp;
        }

        b.WriteByte(flags);
        if (values.Length > 0)
        {
            b.WriteShort(checked((ushort)values.Length));
            for (var i = 0; i < values.Length; i++)
            {
                var column = variables?[i];
                WriteValue(b, values[i], column?.Type, column?.Name ?? $"#{i}");
            }
        }

        if (p.PageSize > 0)
        {
            b.WriteInt(p.PageSize);
        }

        if (!p.PagingState.IsEmpty)
        {
            b.WriteBytes(p.PagingState.Span);
        }

        if (p.SerialConsistency is { } serial)
        {
            b.WriteConsistency(serial);
        }

        if (p.DefaultTimestamp is { } ts)
        {
            b.WriteLong(ts);
        }
    }

    private static void CheckArity(IReadOnlyList<CqlColumn> variables, int count)
    {
        if (variables.Count != count)
        {
            throw new ArgumentException($"The statement has {variables.Count} bind markers; {count} values were given");
        }
    }

    /// <summary>
    /// A [value] (§3): -2 for unset, -1 for null, else the serialization of §6. With a <paramref name="type"/> (a
    /// prepared variable) the value must fit it; without one (QUERY) the value's own kind decides the encoding.
    /// </summary>
    public static void WriteValue(CqlFrameBuilder b, in CqlValue value, CqlType? type, string column)
    {
        switch (value.Kind)
        {
            case CqlValueKind.Unset:
                b.WriteInt(-2);
                return;
            case CqlValueKind.Null:
                b.WriteInt(-1);
                return;
        }

        if (type is not null && !Fits(value.Kind, type))
        {
            throw new ArgumentException($"Column {column} is {type}; a {value.Kind} value does not fit it", nameof(value));
        }

        var code = type?.Code;
        switch (value.Kind)
        {
            case CqlValueKind.BigInt:
            case CqlValueKind.Timestamp:
                b.WriteInt(8);
                b.WriteLong(value.Scalar);
                break;
            case CqlValueKind.Int when code is CqlTypeCode.Bigint or CqlTypeCode.Counter or CqlTypeCode.Timestamp:
                // An int literal bound to a 64-bit column widens losslessly (C# picks the int conversion for small literals).
                b.WriteInt(8);
                b.WriteLong(value.Scalar);
                break;
            case CqlValueKind.Int:
                b.WriteInt(4);
                b.WriteInt((int)value.Scalar);
                break;
            case CqlValueKind.Boolean:
                b.WriteInt(1);
                b.WriteByte(value.Scalar != 0 ? (byte)1 : (byte)0);
                break;
            case CqlValueKind.Text:
                var text = value.AsText;
                var count = Encoding.UTF8.GetByteCount(text);
                b.WriteInt(count);
                Encoding.UTF8.GetBytes(text, b.Grow(count));
                break;
            case CqlValueKind.Blob:
                b.WriteBytes(value.AsBlob.Span);
                break;
            case CqlValueKind.Uuid:
                b.WriteInt(16);
                b.WriteUuid(value.AsUuid);
                break;
            case CqlValueKind.TextList:
                var list = value.AsTextList;
                var lengthAt = b.Length;
                b.WriteInt(0);
                b.WriteInt(list.Count);
                for (var i = 0; i < list.Count; i++)
                {
                    var element = list[i] ?? throw new ArgumentException($"Column {column}: a text list holds no nulls", nameof(value));
                    var n = Encoding.UTF8.GetByteCount(element);
                    b.WriteInt(n);
                    Encoding.UTF8.GetBytes(element, b.Grow(n));
                }

                b.PatchInt(lengthAt, b.Length - lengthAt - 4);
                break;
            default:
                throw new ArgumentException($"Column {column}: unknown value kind {value.Kind}", nameof(value));
        }
    }

    private static bool Fits(CqlValueKind kind, CqlType type) => type.Code switch
    {
        CqlTypeCode.Bigint or CqlTypeCode.Counter or CqlTypeCode.Timestamp => kind is CqlValueKind.BigInt or CqlValueKind.Timestamp or CqlValueKind.Int,
        CqlTypeCode.Int => kind is CqlValueKind.Int,
        CqlTypeCode.Boolean => kind is CqlValueKind.Boolean,
        CqlTypeCode.Varchar or CqlTypeCode.Ascii => kind is CqlValueKind.Text,
        CqlTypeCode.Uuid or CqlTypeCode.Timeuuid => kind is CqlValueKind.Uuid,
        CqlTypeCode.List or CqlTypeCode.Set => kind is CqlValueKind.TextList
            && type.Elements is [{ Code: CqlTypeCode.Varchar or CqlTypeCode.Ascii }],

        // Any other type takes its serialized form as a blob: the caller encoded it per §6.
        _ => kind is CqlValueKind.Blob,
    };

    /// <summary>The routing key of a partition key: the raw bytes of a single component; for a composite key each
    /// component as [short length][bytes][0x00]. False when a component is null or unset (no token then).</summary>
    public static bool WriteRoutingKey(CqlFrameBuilder scratch, CqlFrameBuilder key, IReadOnlyList<int> pkIndexes, IReadOnlyList<CqlColumn> variables, ReadOnlySpan<CqlValue> values)
    {
        key.Reset();
        for (var i = 0; i < pkIndexes.Count; i++)
        {
            var index = pkIndexes[i];
            if ((uint)index >= (uint)values.Length || values[index].Kind is CqlValueKind.Unset or CqlValueKind.Null)
            {
                return false;
            }

            scratch.Reset();
            WriteValue(scratch, values[index], variables[index].Type, variables[index].Name);
            var component = scratch.WrittenSpan[4..];
            if (pkIndexes.Count == 1)
            {
                key.WriteRaw(component);
                return true;
            }

            BinaryPrimitives.WriteUInt16BigEndian(key.Grow(2), checked((ushort)component.Length));
            key.WriteRaw(component);
            key.WriteByte(0);
        }

        return pkIndexes.Count > 0;
    }
}
