using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Gateway.Cql.TestPeer;

/// <summary>A statement prepared on one node: its parse, what it binds and returns, and where its partition key is bound.</summary>
internal sealed record PreparedEntry(string Query, Statement Statement, string? Keyspace, List<ColumnSpec> Markers,
    List<ColumnSpec>? ResultColumns, int[] PkIndexes);

/// <summary>One client connection to a test-double node: reads frames, answers them concurrently, pushes events.</summary>
internal sealed class Connection
{
    private const int MaxFrameLength = 256 * 1024 * 1024;
    private static readonly string[] EventTypes = ["TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE"];

    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly CqlTestNode _node;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly HashSet<string> _events = new(StringComparer.Ordinal);
    private int _inFlight;
    private volatile bool _started;
    private volatile bool _authenticated;
    private volatile bool _closed;

    public Connection(Socket socket, CqlTestNode node, int shard)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _node = node;
        Shard = shard;
    }

    public int Shard { get; }

    public string? Keyspace { get; private set; }

    public bool IsRegistered(string eventType)
    {
        lock (_events)
        {
            return _events.Contains(eventType);
        }
    }

    /// <summary>Closes abruptly (RST), as a crashed or partitioned server would.</summary>
    public void Abort()
    {
        _closed = true;
        try
        {
            _socket.LingerState = new LingerOption(true, 0);
            _socket.Close();
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already gone: nothing to abort.
        }
    }

    public async Task RunAsync()
    {
        var header = new byte[9];
        try
        {
            while (!_closed)
            {
                await _stream.ReadExactlyAsync(header);
                var version = header[0];
                var flags = header[1];
                var stream = BinaryPrimitives.ReadInt16BigEndian(header.AsSpan(2));
                var opcode = header[4];
                var length = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(5));
                if (version != 0x04)
                {
                    // Wrong version (or not CQL at all): say which version we speak, then hang up, as servers do.
                    await SendErrorAndCloseAsync(version, stream,
                        $"Invalid or unsupported protocol version ({version & 0x7F}); supported versions are (4/v4)");
                    return;
                }

                if (length is < 0 or > MaxFrameLength)
                {
                    await SendErrorAndCloseAsync(version, stream, $"Invalid frame body length {length}");
                    return;
                }

                var body = new byte[length];
                await _stream.ReadExactlyAsync(body);
                var now = Interlocked.Increment(ref _inFlight);
                _node.NoteInFlight(now);
                _ = Task.Run(() => HandleAsync(flags, stream, opcode, body));
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or EndOfStreamException)
        {
            // The client went away or the node dropped us: the connection just ends.
        }
        finally
        {
            _closed = true;
            _node.Forget(this);
            _socket.Dispose();
        }
    }

    private async Task SendErrorAndCloseAsync(byte version, short stream, string message)
    {
        var w = new WireWriter();
        w.WriteInt(CqlException.ProtocolError);
        w.WriteString(message);
        var v = (version & 0x7F) is >= 1 and <= 2 ? version & 0x7F : (version & 0x7F) is 0 ? 4 : version & 0x7F;
        byte[] frame;
        if (v <= 2)
        {
            // v1/v2 headers have a one-byte stream id: answer in a form such a client can parse.
            frame = new byte[8 + w.Length];
            frame[0] = (byte)(0x80 | v);
            frame[2] = (byte)stream;
            frame[3] = 0x00;
            BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(4), w.Length);
            w.Written.CopyTo(frame.AsSpan(8));
        }
        else
        {
            frame = Frame((byte)(0x80 | v), 0, stream, 0x00, w.Written);
        }

        try
        {
            await _writeLock.WaitAsync();
            await _stream.WriteAsync(frame);
            await _stream.FlushAsync();
            _socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            // The client did not wait for the answer.
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private static byte[] Frame(byte version, byte flags, short stream, byte opcode, ReadOnlySpan<byte> body)
    {
        var frame = new byte[9 + body.Length];
        frame[0] = version;
        frame[1] = flags;
        BinaryPrimitives.WriteInt16BigEndian(frame.AsSpan(2), stream);
        frame[4] = opcode;
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(5), body.Length);
        body.CopyTo(frame.AsSpan(9));
        return frame;
    }

    public async Task SendAsync(byte flags, short stream, byte opcode, ReadOnlyMemory<byte> body)
    {
        var frame = Frame(0x84, flags, stream, opcode, body.Span);
        await _writeLock.WaitAsync();
        try
        {
            await _stream.WriteAsync(frame);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            // A write to a closed connection is dropped; the read loop notices the close.
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public Task SendEventAsync(WireWriter body) => SendAsync(0, -1, 0x0C, body.ToArray());

    private sealed record Response(byte Opcode, WireWriter Body, List<string>? Warnings = null, bool Traced = false);

    private async Task HandleAsync(byte flags, short stream, byte opcode, byte[] body)
    {
        _node.CountRequest(opcode);
        var log = new LogDraft { Opcode = opcode, Stream = stream, Shard = Shard };
        try
        {
            Response response;
            try
            {
                response = Process(flags, opcode, body, log);
            }
            catch (CqlException e)
            {
                response = new Response(0x00, ErrorBody(e.Code, e.Message, e.Details));
            }
            catch (ProtocolViolationException e)
            {
                response = new Response(0x00, ErrorBody(CqlException.ProtocolError, e.Message, null));
            }
            catch (Exception e)
            {
                // A bug in the peer must not take the process down: report it as a server error.
                response = new Response(0x00, ErrorBody(CqlException.ServerError, e.ToString(), null));
            }

            _node.AddLog(log);
            var delay = _node.ResponseDelay;
            if (delay > TimeSpan.Zero)
            {
                await Task.Delay(delay);
            }

            if (_node.Blackhole || _closed)
            {
                return;
            }

            var w = new WireWriter();
            byte responseFlags = 0;
            if (response.Traced)
            {
                responseFlags |= 0x02;
                w.WriteRaw(Guid.NewGuid().ToByteArray(true));
            }

            if (response.Warnings is { Count: > 0 })
            {
                responseFlags |= 0x08;
                w.WriteStringList(response.Warnings);
            }

            w.WriteRaw(response.Body.Written);
            await SendAsync(responseFlags, stream, response.Opcode, w.ToArray());
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    private static WireWriter ErrorBody(int code, string message, Action<WireWriter>? details)
    {
        var w = new WireWriter();
        w.WriteInt(code);
        w.WriteString(message.Length > 8000 ? message[..8000] : message);
        details?.Invoke(w);
        return w;
    }

    private Response Process(byte flags, byte opcode, byte[] body, LogDraft log)
    {
        if (_node.Blackhole)
        {
            // Never answered; the draft still lands in the log.
            return new Response(0x02, new WireWriter());
        }

        if ((flags & 0x01) != 0)
        {
            throw new ProtocolViolationException("compressed frame received but no compression was negotiated");
        }

        var r = new WireReader(body);
        if ((flags & 0x04) != 0 && opcode is 0x07 or 0x09 or 0x0A or 0x0D)
        {
            r.SkipBytesMap();
        }

        var traced = (flags & 0x02) != 0 && opcode is 0x07 or 0x09 or 0x0A;
        switch (opcode)
        {
            case 0x05:
                return new Response(0x06, _node.Supported(Shard));
            case 0x01:
                var options = r.ReadStringMap();
                if (options.TryGetValue("COMPRESSION", out var compression) && compression.Length > 0)
                {
                    throw new ProtocolViolationException($"Unknown compression algorithm: {compression}");
                }

                _started = true;
                if (_node.Cluster.RequiresAuth)
                {
                    var auth = new WireWriter();
                    auth.WriteString("org.apache.cassandra.auth.PasswordAuthenticator");
                    return new Response(0x03, auth);
                }

                _authenticated = true;
                return new Response(0x02, new WireWriter());
            case 0x0F:
                return Authenticate(r);
        }

        if (!_started)
        {
            throw new ProtocolViolationException($"Unexpected message {opcode:X2}, expecting STARTUP or OPTIONS.");
        }

        if (!_authenticated)
        {
            throw new CqlException(0x0100, "Authentication is required before any query");
        }

        switch (opcode)
        {
            case 0x0B:
                var types = r.ReadStringList();
                foreach (var type in types)
                {
                    if (!EventTypes.Contains(type))
                    {
                        throw new ProtocolViolationException($"Invalid value '{type}' for Type");
                    }
                }

                lock (_events)
                {
                    _events.UnionWith(types);
                }

                return new Response(0x02, new WireWriter());
            case 0x07:
                {
                    var query = r.ReadLongString();
                    log.Query = query;
                    var statement = Parser.Parse(query);
                    var (ctx, values, skip) = ReadParameters(r, statement);
                    return Run(new BoundStatement(statement, values), ctx, skip, traced, log, false);
                }

            case 0x09:
                {
                    var query = r.ReadLongString();
                    log.Query = query;
                    var entry = Prepare(query);
                    var w = new WireWriter();
                    w.WriteInt(0x0004);
                    var id = MD5.HashData(Encoding.UTF8.GetBytes(query));
                    log.PreparedId = id;
                    w.WriteShortBytes(id);
                    WritePreparedMetadata(w, entry);
                    if (entry.ResultColumns is null)
                    {
                        w.WriteInt(0x0004);
                        w.WriteInt(0);
                    }
                    else
                    {
                        ResultMessage.WriteSpecs(w, entry.ResultColumns, 0, null, false);
                    }

                    _node.Prepared[Convert.ToHexString(id)] = entry;
                    return new Response(0x08, w, null, traced);
                }

            case 0x0A:
                {
                    var id = r.ReadShortBytes();
                    log.PreparedId = id;
                    var entry = Lookup(id);
                    log.Query = entry.Query;
                    var (ctx, values, skip) = ReadParameters(r, entry.Statement);
                    if (entry.PkIndexes.Length > 0 && entry.PkIndexes.All(i => values[i].Bytes is not null))
                    {
                        log.Token = Murmur3Token.Token([.. entry.PkIndexes.Select(i => values[i].Bytes!)]);
                    }

                    ctx.Keyspace = entry.Keyspace ?? ctx.Keyspace;
                    return Run(new BoundStatement(entry.Statement, values), ctx, skip && entry.ResultColumns is not null, traced, log, false);
                }

            case 0x0D:
                return Batch(r, log);
            default:
                throw new ProtocolViolationException($"Unknown or unexpected request opcode 0x{opcode:X2}");
        }
    }

    private Response Authenticate(WireReader r)
    {
        if (!_node.Cluster.RequiresAuth || !_started)
        {
            throw new ProtocolViolationException("Unexpected AUTH_RESPONSE");
        }

        var token = r.ReadBytes() ?? [];
        // SASL PLAIN: authorization id, NUL, user name, NUL, password.
        var parts = Encoding.UTF8.GetString(token).Split('\0');
        var (user, password) = parts.Length == 3 ? (parts[1], parts[2]) : ("", "");
        if (user != _node.Cluster.Options.Username || password != _node.Cluster.Options.Password)
        {
            throw new CqlException(CqlException.BadCredentials, $"Provided username {user} and/or password are incorrect");
        }

        _authenticated = true;
        var w = new WireWriter();
        w.WriteBytes(null);
        return new Response(0x10, w);
    }

    private PreparedEntry Lookup(byte[] id) =>
        _node.Prepared.TryGetValue(Convert.ToHexString(id), out var entry)
            ? entry
            : throw new CqlException(CqlException.UnpreparedCode,
                $"Prepared query with ID {Convert.ToHexString(id).ToLowerInvariant()} not found (either the query was not prepared on this host (maybe the host has been restarted?) or you have prepared too many queries and it has been evicted from the internal cache)",
                w => w.WriteShortBytes(id));

    private ExecContext NewContext() => new()
    {
        Keyspace = Keyspace,
        Local = _node.Info,
        Peers = [.. _node.Cluster.RingNodes.Where(n => n != _node).Select(n => n.Info)],
    };

    private (ExecContext Ctx, BoundValue[] Values, bool SkipMetadata) ReadParameters(WireReader r, Statement statement)
    {
        var ctx = NewContext();
        ctx.Consistency = r.ReadShort();
        var flags = r.ReadByte();
        var values = Array.Empty<BoundValue>();
        if ((flags & 0x01) != 0)
        {
            var n = r.ReadShort();
            var names = (flags & 0x40) != 0 ? new string[n] : null;
            values = new BoundValue[n];
            for (var i = 0; i < n; i++)
            {
                if (names is not null)
                {
                    names[i] = r.ReadString();
                }

                values[i] = r.ReadValue();
            }

            if (names is not null)
            {
                values = ByName(statement, names, values);
            }
        }

        if ((flags & 0x04) != 0)
        {
            ctx.PageSize = r.ReadInt();
        }

        if ((flags & 0x08) != 0)
        {
            ctx.PagingState = r.ReadBytes();
        }

        if ((flags & 0x10) != 0)
        {
            r.ReadShort();
        }

        if ((flags & 0x20) != 0)
        {
            var ts = r.ReadLong();
            ctx.DefaultTimestamp = ts >= 0 ? ts : throw CqlException.Invalid($"Out of bound timestamp: {ts}");
        }

        return (ctx, values, (flags & 0x02) != 0);
    }

    /// <summary>Orders values sent with names (flag 0x40) by the markers they name.</summary>
    private static BoundValue[] ByName(Statement statement, string[] names, BoundValue[] values)
    {
        var result = new BoundValue[statement.Markers.Count];
        for (var i = 0; i < result.Length; i++)
        {
            var marker = statement.Markers[i];
            var name = marker.Name ?? marker.Column;
            var at = Array.FindIndex(names, n => string.Equals(n, name, StringComparison.OrdinalIgnoreCase));
            result[i] = at >= 0 ? values[at] : throw CqlException.Invalid($"No value provided for bind marker {name}");
        }

        return result;
    }

    private Response Run(BoundStatement bound, ExecContext ctx, bool skipMetadata, bool traced, LogDraft log, bool batch)
    {
        if (_node.TakeFailure() is { } code)
        {
            throw Injected(code, ctx.Consistency, batch);
        }

        var result = _node.Cluster.Engine.Execute(bound, ctx);
        log.Token ??= ctx.Token;
        if (result is SetKeyspaceResult use)
        {
            Keyspace = use.Keyspace;
        }
        else if (result is SchemaChangeResult change)
        {
            _node.Cluster.BroadcastSchemaChange(change);
        }

        var w = new WireWriter();
        result.Write(w, skipMetadata);
        return new Response(0x08, w, ctx.Warnings, traced);
    }

    private Response Batch(WireReader r, LogDraft log)
    {
        var type = r.ReadByte();
        if (type > 2)
        {
            throw new ProtocolViolationException($"Invalid BATCH message type {type}");
        }

        var n = r.ReadShort();
        var items = new List<(Statement Statement, PreparedEntry? Entry, BoundValue[] Values)>();
        for (var i = 0; i < n; i++)
        {
            var kind = r.ReadByte();
            Statement statement;
            PreparedEntry? entry = null;
            if (kind == 0)
            {
                var query = r.ReadLongString();
                log.Query ??= query;
                statement = Parser.Parse(query);
            }
            else if (kind == 1)
            {
                var id = r.ReadShortBytes();
                log.PreparedId ??= id;
                entry = Lookup(id);
                log.Query ??= entry.Query;
                statement = entry.Statement;
            }
            else
            {
                throw new ProtocolViolationException($"Invalid query kind in BATCH messages. Must be 0 or 1 but got {kind}");
            }

            var count = r.ReadShort();
            var values = new BoundValue[count];
            for (var j = 0; j < count; j++)
            {
                values[j] = r.ReadValue();
            }

            items.Add((statement, entry, values));
        }

        var ctx = NewContext();
        ctx.Consistency = r.ReadShort();
        var flags = r.ReadByte();
        if ((flags & 0x10) != 0)
        {
            r.ReadShort();
        }

        if ((flags & 0x20) != 0)
        {
            ctx.DefaultTimestamp = r.ReadLong();
        }

        if (_node.TakeFailure() is { } code)
        {
            throw Injected(code, ctx.Consistency, true, type == 0 ? "BATCH" : "UNLOGGED_BATCH");
        }

        // Each prepared statement keeps the keyspace it was prepared in; plain ones use the connection's.
        var bound = items.Select(it => new BoundStatement(
            it.Entry?.Keyspace is { } ks && it.Statement is InsertStatement or UpdateStatement or DeleteStatement
                ? Qualify(it.Statement, ks)
                : it.Statement,
            it.Values)).ToList();
        var result = _node.Cluster.Engine.ExecuteBatch(bound, ctx);
        log.Token ??= ctx.Token;
        var w = new WireWriter();
        result.Write(w, false);
        return new Response(0x08, w, ctx.Warnings);
    }

    private static Statement Qualify(Statement s, string keyspace) => s switch
    {
        InsertStatement i when i.Table.Keyspace is null => i with { Table = i.Table with { Keyspace = keyspace } },
        UpdateStatement u when u.Table.Keyspace is null => u with { Table = u.Table with { Keyspace = keyspace } },
        DeleteStatement d when d.Table.Keyspace is null => d with { Table = d.Table with { Keyspace = keyspace } },
        _ => s,
    };

    /// <summary>An injected failure (FailNext), with the details its error code carries on the wire.</summary>
    private static CqlException Injected(int code, ushort consistency, bool batch, string? writeType = null)
    {
        writeType ??= batch ? "BATCH" : "SIMPLE";
        return code switch
        {
            0x1000 => new CqlException(code, "Cannot achieve consistency level (injected by the test peer)", w =>
            {
                w.WriteShort(consistency);
                w.WriteInt(2);
                w.WriteInt(1);
            }),
            0x1100 => new CqlException(code, "Operation timed out - received only 0 responses (injected)", w =>
            {
                w.WriteShort(consistency);
                w.WriteInt(0);
                w.WriteInt(1);
                w.WriteString(writeType);
            }),
            0x1200 => new CqlException(code, "Operation timed out - received only 0 responses (injected)", w =>
            {
                w.WriteShort(consistency);
                w.WriteInt(0);
                w.WriteInt(1);
                w.WriteByte(0);
            }),
            0x1300 => new CqlException(code, "Operation failed (injected)", w =>
            {
                w.WriteShort(consistency);
                w.WriteInt(0);
                w.WriteInt(1);
                w.WriteInt(1);
                w.WriteByte(0);
            }),
            0x1400 => new CqlException(code, "Function failed (injected)", w =>
            {
                w.WriteString("ks");
                w.WriteString("fn");
                w.WriteStringList(["int"]);
            }),
            0x1500 => new CqlException(code, "Operation failed (injected)", w =>
            {
                w.WriteShort(consistency);
                w.WriteInt(0);
                w.WriteInt(1);
                w.WriteInt(1);
                w.WriteString(writeType);
            }),
            0x2400 => CqlException.AlreadyExists("ks", "table", "Already exists (injected)"),
            0x2500 => new CqlException(code, "Unprepared (injected)", w => w.WriteShortBytes(new byte[16])),
            _ => new CqlException(code, $"Error 0x{code:X4} injected by the test peer"),
        };
    }

    private PreparedEntry Prepare(string query)
    {
        var statement = Parser.Parse(query);
        var engine = _node.Cluster.Engine;
        var ctx = NewContext();
        lock (engine.Db.Sync)
        {
            var markers = new List<ColumnSpec>();
            foreach (var m in statement.Markers)
            {
                TableDef? t = null;
                if (m.Table is not null)
                {
                    t = engine.ResolveTable(m.Table, Keyspace, ctx);
                }

                var (ks, table) = t is null ? ("", "") : (t.Keyspace, t.Name);
                markers.Add(m.Role switch
                {
                    MarkerRole.Limit => new ColumnSpec(ks, table, m.Name ?? "[limit]", ColumnType.IntType),
                    MarkerRole.Ttl => new ColumnSpec(ks, table, m.Name ?? "[ttl]", ColumnType.IntType),
                    MarkerRole.Timestamp => new ColumnSpec(ks, table, m.Name ?? "[timestamp]", ColumnType.BigintType),
                    MarkerRole.InList => new ColumnSpec(ks, table, m.Name ?? $"in({m.Column})",
                        new ColumnType(TypeKind.List, t!.Column(m.Column!).Type)),
                    _ => new ColumnSpec(ks, table, m.Name ?? m.Column!, t!.Column(m.Column!).Type),
                });
            }

            List<ColumnSpec>? resultColumns = null;
            var pkIndexes = Array.Empty<int>();
            if (statement is SelectStatement s)
            {
                var t = engine.ResolveTable(s.Table, Keyspace, ctx);
                var selectors = s.Selectors ?? [.. t.Columns.Select(c => new Selector(SelectorKind.Column, c.Name, null))];
                resultColumns = [.. selectors.Select(sel => Engine.SelectorSpec(t, sel))];
            }

            var target = statement switch
            {
                SelectStatement x => x.Table,
                InsertStatement x => x.Table,
                UpdateStatement x => x.Table,
                DeleteStatement x => x.Table,
                _ => null,
            };
            if (target is not null)
            {
                var t = engine.ResolveTable(target, Keyspace, ctx);
                var indexes = t.PartitionKey
                    .Select(c => statement.Markers.FindIndex(m => m.Role == MarkerRole.Column && m.Column == c.Name))
                    .ToArray();
                if (indexes.All(i => i >= 0))
                {
                    pkIndexes = indexes;
                }
            }

            return new PreparedEntry(query, statement, Keyspace, markers, resultColumns, pkIndexes);
        }
    }

    private static void WritePreparedMetadata(WireWriter w, PreparedEntry entry)
    {
        var specs = entry.Markers;
        var global = specs.Count > 0 && specs.All(c => c.Keyspace == specs[0].Keyspace && c.Table == specs[0].Table);
        w.WriteInt(global ? 0x0001 : 0);
        w.WriteInt(specs.Count);
        w.WriteInt(entry.PkIndexes.Length);
        foreach (var i in entry.PkIndexes)
        {
            w.WriteShort((ushort)i);
        }

        if (global)
        {
            w.WriteString(specs[0].Keyspace);
            w.WriteString(specs[0].Table);
        }

        foreach (var c in specs)
        {
            if (!global)
            {
                w.WriteString(c.Keyspace);
                w.WriteString(c.Table);
            }

            w.WriteString(c.Name);
            c.Type.WriteOption(w);
        }
    }
}

/// <summary>A request log entry being filled in while the request is handled.</summary>
internal sealed class LogDraft
{
    public byte Opcode { get; init; }

    public short Stream { get; init; }

    public int Shard { get; init; }

    public string? Query { get; set; }

    public byte[]? PreparedId { get; set; }

    public long? Token { get; set; }
}
