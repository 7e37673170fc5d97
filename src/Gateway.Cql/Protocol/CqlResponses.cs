using System.Buffers;
using System.Net;

namespace Gateway.Cql.Protocol;

/// <summary>What precedes the message in a response body, by header flag (spec §2.2, §4).</summary>
internal readonly record struct CqlEnvelope(Guid? TracingId, IReadOnlyList<string>? Warnings, IReadOnlyDictionary<string, byte[]>? CustomPayload, int MessageStart);

/// <summary>An EVENT (spec §4.2.6) as read from the wire.</summary>
internal sealed record CqlEventMessage(CqlClusterEventKind Kind, IPEndPoint? Node, CqlSchemaChange? SchemaChange);

/// <summary>Decodes the responses of spec §4.2.</summary>
internal static class CqlResponses
{
    private const int RowsGlobalTablesSpec = 0x0001;
    private const int RowsHasMorePages = 0x0002;
    private const int RowsNoMetadata = 0x0004;

    /// <summary>Reads the tracing id, warnings and custom payload the flags announce (in that order, §2.2).</summary>
    public static CqlEnvelope ReadEnvelope(CqlFrameFlags flags, ReadOnlySpan<byte> body)
    {
        if ((flags & (CqlFrameFlags.Tracing | CqlFrameFlags.Warning | CqlFrameFlags.CustomPayload)) == 0)
        {
            return new CqlEnvelope(null, null, null, 0);
        }

        var r = new CqlReader(body);
        Guid? tracing = (flags & CqlFrameFlags.Tracing) != 0 ? r.ReadUuid() : null;
        var warnings = (flags & CqlFrameFlags.Warning) != 0 ? r.ReadStringList() : null;
        var payload = (flags & CqlFrameFlags.CustomPayload) != 0 ? r.ReadBytesMap() : null;
        return new CqlEnvelope(tracing, warnings, payload, r.Position);
    }

    /// <summary>An ERROR (§4.2.1) with the details of its code (§9).</summary>
    public static CqlServerException ReadError(ReadOnlySpan<byte> message, string? host)
    {
        var r = new CqlReader(message);
        var code = (CqlErrorCode)r.ReadInt();
        var text = r.ReadString();
        switch (code)
        {
            case CqlErrorCode.Unavailable:
                var cl = r.ReadConsistency();
                var required = r.ReadInt();
                return new CqlServerException(code, text, host) { Consistency = cl, Required = required, Alive = r.ReadInt() };
            case CqlErrorCode.WriteTimeout:
                {
                    var consistency = r.ReadConsistency();
                    var received = r.ReadInt();
                    var blockFor = r.ReadInt();
                    return new CqlServerException(code, text, host) { Consistency = consistency, Received = received, BlockFor = blockFor, WriteType = r.ReadString() };
                }

            case CqlErrorCode.ReadTimeout:
                {
                    var consistency = r.ReadConsistency();
                    var received = r.ReadInt();
                    var blockFor = r.ReadInt();
                    return new CqlServerException(code, text, host) { Consistency = consistency, Received = received, BlockFor = blockFor, DataPresent = r.ReadByte() != 0 };
                }

            case CqlErrorCode.ReadFailure:
                {
                    var consistency = r.ReadConsistency();
                    var received = r.ReadInt();
                    var blockFor = r.ReadInt();
                    var failures = r.ReadInt();
                    return new CqlServerException(code, text, host) { Consistency = consistency, Received = received, BlockFor = blockFor, FailureCount = failures, DataPresent = r.ReadByte() != 0 };
                }

            case CqlErrorCode.WriteFailure:
                {
                    var consistency = r.ReadConsistency();
                    var received = r.ReadInt();
                    var blockFor = r.ReadInt();
                    var failures = r.ReadInt();
                    return new CqlServerException(code, text, host) { Consistency = consistency, Received = received, BlockFor = blockFor, FailureCount = failures, WriteType = r.ReadString() };
                }

            case CqlErrorCode.FunctionFailure:
                {
                    var keyspace = r.ReadString();
                    var function = r.ReadString();
                    return new CqlServerException(code, text, host) { Keyspace = keyspace, Function = function, ArgumentTypes = r.ReadStringList() };
                }

            case CqlErrorCode.AlreadyExists:
                {
                    var keyspace = r.ReadString();
                    return new CqlServerException(code, text, host) { Keyspace = keyspace, Table = r.ReadString() };
                }

            case CqlErrorCode.Unprepared:
                return new CqlServerException(code, text, host) { UnpreparedId = r.ReadShortBytes().ToArray() };
            default:
                return new CqlServerException(code, text, host);
        }
    }

    /// <summary>SUPPORTED (§4.2.4): a [string multimap].</summary>
    public static Dictionary<string, IReadOnlyList<string>> ReadSupported(ReadOnlySpan<byte> message) => new CqlReader(message).ReadStringMultimap();

    /// <summary>AUTHENTICATE (§4.2.3): the authenticator class.</summary>
    public static string ReadAuthenticate(ReadOnlySpan<byte> message) => new CqlReader(message).ReadString();

    /// <summary>
    /// A RESULT (§4.2.5) other than Prepared. The frame's buffer moves into the <see cref="CqlRows"/> of a Rows result
    /// (which returns it on dispose) and is released here otherwise. <paramref name="knownColumns"/> serve a page sent
    /// with No_metadata (the statement's result metadata from PREPARE).
    /// </summary>
    public static CqlResult ReadResult(CqlResponseFrame frame, IReadOnlyList<CqlColumn>? knownColumns = null)
    {
        var keepBuffer = false;
        try
        {
            var envelope = ReadEnvelope(frame.Flags, frame.Span);
            var r = new CqlReader(frame.Span) { Position = envelope.MessageStart };
            var kind = (CqlResultKind)r.ReadInt();
            switch (kind)
            {
                case CqlResultKind.Void:
                    return new CqlResult(kind, warnings: envelope.Warnings, tracingId: envelope.TracingId, customPayload: envelope.CustomPayload);
                case CqlResultKind.SetKeyspace:
                    return new CqlResult(kind, keyspace: r.ReadString(), warnings: envelope.Warnings, tracingId: envelope.TracingId, customPayload: envelope.CustomPayload);
                case CqlResultKind.SchemaChange:
                    return new CqlResult(kind, schemaChange: ReadSchemaChange(ref r), warnings: envelope.Warnings, tracingId: envelope.TracingId, customPayload: envelope.CustomPayload);
                case CqlResultKind.Rows:
                    var rows = ReadRows(frame.Body, frame.Length, r.Position, knownColumns);
                    keepBuffer = true;
                    return new CqlResult(kind, rows, warnings: envelope.Warnings, tracingId: envelope.TracingId, customPayload: envelope.CustomPayload);
                default:
                    throw new CqlException($"Unexpected RESULT kind 0x{(int)kind:X4}");
            }
        }
        finally
        {
            if (!keepBuffer)
            {
                frame.Release();
            }
        }
    }

    /// <summary>
    /// The rows of a Rows result (§4.2.5.2) that starts at <paramref name="start"/> (just after the kind) in
    /// <paramref name="body"/>: the metadata is parsed, then each cell's offset recorded in a pooled array. Nothing is
    /// allocated per row. The caller hands over <paramref name="body"/>: the rows return it on dispose.
    /// </summary>
    internal static CqlRows ReadRows(byte[] body, int length, int start, IReadOnlyList<CqlColumn>? knownColumns)
    {
        var r = new CqlReader(body.AsSpan(0, length)) { Position = start };
        var (columns, pagingState) = ReadRowsMetadata(ref r, knownColumns);
        var columnCount = columns.Count;
        var rowCount = r.ReadInt();
        if (rowCount < 0)
        {
            throw new CqlException($"Malformed Rows result: {rowCount} rows");
        }

        var cells = checked(rowCount * columnCount);
        var offsets = ArrayPool<int>.Shared.Rent(Math.Max(cells, 1));
        try
        {
            for (var i = 0; i < cells; i++)
            {
                offsets[i] = r.Position;
                var n = r.ReadInt();
                if (n > 0)
                {
                    r.Take(n);
                }
            }
        }
        catch
        {
            ArrayPool<int>.Shared.Return(offsets);
            throw;
        }

        return new CqlRows(columns, rowCount, body, offsets, pagingState);
    }

    /// <summary>Rows metadata (§4.2.5.2): flags, column count, paging state, column specs unless No_metadata.</summary>
    internal static (IReadOnlyList<CqlColumn> Columns, ReadOnlyMemory<byte> PagingState) ReadRowsMetadata(ref CqlReader r, IReadOnlyList<CqlColumn>? knownColumns)
    {
        var flags = r.ReadInt();
        var columnCount = r.ReadInt();
        ReadOnlyMemory<byte> pagingState = default;
        if ((flags & RowsHasMorePages) != 0)
        {
            if (r.ReadBytes(out var state))
            {
                // Copied out of the pooled body: callers keep the state for the next page after disposing this one.
                pagingState = state.ToArray();
            }
        }

        if ((flags & RowsNoMetadata) != 0)
        {
            return (knownColumns is not null && knownColumns.Count == columnCount ? knownColumns : Anonymous(columnCount), pagingState);
        }

        return (ReadColumnSpecs(ref r, flags, columnCount), pagingState);
    }

    /// <summary>PREPARED (§4.2.5.4, v4): id, variables metadata with partition key indexes, result metadata.</summary>
    public static CqlPrepared ReadPrepared(string query, CqlResponseFrame frame)
    {
        var envelope = ReadEnvelope(frame.Flags, frame.Span);
        var r = new CqlReader(frame.Span) { Position = envelope.MessageStart };
        var kind = (CqlResultKind)r.ReadInt();
        if (kind != CqlResultKind.Prepared)
        {
            throw new CqlException($"PREPARE answered with a {kind} result");
        }

        var id = r.ReadShortBytes().ToArray();
        var flags = r.ReadInt();
        var columnCount = r.ReadInt();
        var pkCount = r.ReadInt();
        var pk = new int[pkCount];
        for (var i = 0; i < pkCount; i++)
        {
            pk[i] = r.ReadShort();
        }

        var variables = ReadColumnSpecs(ref r, flags, columnCount);
        var (resultColumns, _) = ReadRowsMetadata(ref r, null);
        return new CqlPrepared(query, id, variables, pk, resultColumns);
    }

    /// <summary>EVENT (§4.2.6).</summary>
    public static CqlEventMessage ReadEvent(ReadOnlySpan<byte> message)
    {
        var r = new CqlReader(message);
        var type = r.ReadString();
        switch (type)
        {
            case "TOPOLOGY_CHANGE":
                {
                    var change = r.ReadString();
                    var node = r.ReadInet();
                    return change switch
                    {
                        "NEW_NODE" => new CqlEventMessage(CqlClusterEventKind.NodeAdded, node, null),
                        "REMOVED_NODE" => new CqlEventMessage(CqlClusterEventKind.NodeRemoved, node, null),
                        _ => throw new CqlException($"Unknown TOPOLOGY_CHANGE {change}"),
                    };
                }

            case "STATUS_CHANGE":
                {
                    var change = r.ReadString();
                    var node = r.ReadInet();
                    return change switch
                    {
                        "UP" => new CqlEventMessage(CqlClusterEventKind.NodeUp, node, null),
                        "DOWN" => new CqlEventMessage(CqlClusterEventKind.NodeDown, node, null),
                        _ => throw new CqlException($"Unknown STATUS_CHANGE {change}"),
                    };
                }

            case "SCHEMA_CHANGE":
                return new CqlEventMessage(CqlClusterEventKind.SchemaChanged, null, ReadSchemaChange(ref r));
            default:
                throw new CqlException($"Unknown event type {type}");
        }
    }

    /// <summary>&lt;change_type&gt;&lt;target&gt;&lt;options&gt; of §4.2.6, shared by the Schema_change result (§4.2.5.5).</summary>
    private static CqlSchemaChange ReadSchemaChange(ref CqlReader r)
    {
        var change = r.ReadString();
        var target = r.ReadString();
        var keyspace = r.ReadString();
        return target switch
        {
            "KEYSPACE" => new CqlSchemaChange(change, target, keyspace, null, null),
            "TABLE" or "TYPE" => new CqlSchemaChange(change, target, keyspace, r.ReadString(), null),
            "FUNCTION" or "AGGREGATE" => new CqlSchemaChange(change, target, keyspace, r.ReadString(), r.ReadStringList()),
            _ => throw new CqlException($"Unknown schema change target {target}"),
        };
    }

    private static CqlColumn[] ReadColumnSpecs(ref CqlReader r, int flags, int columnCount)
    {
        if (columnCount < 0)
        {
            throw new CqlException($"Malformed metadata: {columnCount} columns");
        }

        string? keyspace = null;
        string? table = null;
        if ((flags & RowsGlobalTablesSpec) != 0)
        {
            keyspace = r.ReadString();
            table = r.ReadString();
        }

        var columns = new CqlColumn[columnCount];
        for (var i = 0; i < columnCount; i++)
        {
            var ks = keyspace ?? r.ReadString();
            var tb = table ?? r.ReadString();
            var name = r.ReadString();
            columns[i] = new CqlColumn(ks, tb, name, r.ReadType());
        }

        return columns;
    }

    private static CqlColumn[] Anonymous(int count)
    {
        var columns = new CqlColumn[count];
        for (var i = 0; i < count; i++)
        {
            columns[i] = new CqlColumn("", "", $"#{i}", CqlTypes.Of(CqlTypeCode.Blob));
        }

        return columns;
    }
}
