using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Gateway.Cql.TestPeer.Tests;

/// <summary>A received frame.</summary>
public sealed record Frame(byte Version, byte Flags, short Stream, byte Opcode, byte[] Body)
{
    public BodyReader Reader() => new(Body);

    /// <summary>For ERROR frames: the code and message.</summary>
    public (int Code, string Message) Error()
    {
        Assert.Equal(0x00, Opcode);
        var r = Reader();
        return (r.Int(), r.String());
    }
}

/// <summary>Reads protocol notations, written independently of the peer's own reader.</summary>
public sealed class BodyReader(byte[] body)
{
    private int _at;

    public bool AtEnd => _at >= body.Length;

    public byte Byte() => body[_at++];

    public short Short()
    {
        var v = BinaryPrimitives.ReadInt16BigEndian(body.AsSpan(_at));
        _at += 2;
        return v;
    }

    public int Int()
    {
        var v = BinaryPrimitives.ReadInt32BigEndian(body.AsSpan(_at));
        _at += 4;
        return v;
    }

    public long Long()
    {
        var v = BinaryPrimitives.ReadInt64BigEndian(body.AsSpan(_at));
        _at += 8;
        return v;
    }

    public string String()
    {
        var n = (ushort)Short();
        var s = Encoding.UTF8.GetString(body, _at, n);
        _at += n;
        return s;
    }

    public byte[] Raw(int n)
    {
        var b = body.AsSpan(_at, n).ToArray();
        _at += n;
        return b;
    }

    public byte[]? Bytes()
    {
        var n = Int();
        return n < 0 ? null : Raw(n);
    }

    public byte[] ShortBytes() => Raw((ushort)Short());

    public List<string> StringList() => [.. Enumerable.Range(0, (ushort)Short()).Select(_ => String())];

    public Dictionary<string, List<string>> Multimap() =>
        Enumerable.Range(0, (ushort)Short()).ToDictionary(_ => String(), _ => StringList());

    public (IPAddress Ip, int Port) Inet()
    {
        var n = Byte();
        return (new IPAddress(Raw(n)), Int());
    }

    public void Option()
    {
        var id = Short();
        if (id is 0x20 or 0x22)
        {
            Option();
        }
        else if (id == 0x21)
        {
            Option();
            Option();
        }
    }

    /// <summary>A Rows result (after the kind): column names and rows of raw values.</summary>
    public (List<string> Columns, List<byte[]?[]> Rows, byte[]? PagingState) Rows()
    {
        var flags = Int();
        var count = Int();
        byte[]? paging = (flags & 0x02) != 0 ? Bytes() : null;
        var names = new List<string>();
        if ((flags & 0x04) == 0)
        {
            var global = (flags & 0x01) != 0;
            if (global)
            {
                String();
                String();
            }

            for (var i = 0; i < count; i++)
            {
                if (!global)
                {
                    String();
                    String();
                }

                names.Add(String());
                Option();
            }
        }

        var rows = new List<byte[]?[]>();
        var n = Int();
        for (var i = 0; i < n; i++)
        {
            rows.Add([.. Enumerable.Range(0, count).Select(_ => Bytes())]);
        }

        return (names, rows, paging);
    }
}

/// <summary>Builds frame bodies.</summary>
public sealed class BodyWriter
{
    private readonly List<byte> _bytes = [];

    public byte[] ToArray() => [.. _bytes];

    public BodyWriter Byte(byte b)
    {
        _bytes.Add(b);
        return this;
    }

    public BodyWriter Short(int v)
    {
        _bytes.Add((byte)(v >> 8));
        _bytes.Add((byte)v);
        return this;
    }

    public BodyWriter Int(int v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(b, v);
        _bytes.AddRange(b.ToArray());
        return this;
    }

    public BodyWriter Long(long v)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(b, v);
        _bytes.AddRange(b.ToArray());
        return this;
    }

    public BodyWriter String(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        Short(b.Length);
        _bytes.AddRange(b);
        return this;
    }

    public BodyWriter LongString(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        Int(b.Length);
        _bytes.AddRange(b);
        return this;
    }

    public BodyWriter Bytes(byte[]? b)
    {
        if (b is null)
        {
            return Int(-1);
        }

        Int(b.Length);
        _bytes.AddRange(b);
        return this;
    }

    public BodyWriter ShortBytes(byte[] b)
    {
        Short(b.Length);
        _bytes.AddRange(b);
        return this;
    }

    public BodyWriter StringList(params string[] items)
    {
        Short(items.Length);
        foreach (var s in items)
        {
            String(s);
        }

        return this;
    }
}

/// <summary>Values as the protocol serializes them.</summary>
public static class V
{
    public static byte[] Text(string s) => Encoding.UTF8.GetBytes(s);

    public static byte[] Bigint(long v)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(b, v);
        return b;
    }

    public static byte[] Int(int v)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(b, v);
        return b;
    }

    public static string? AsText(byte[]? b) => b is null ? null : Encoding.UTF8.GetString(b);

    public static long AsBigint(byte[]? b) => BinaryPrimitives.ReadInt64BigEndian(b);

    public static int AsInt(byte[]? b) => BinaryPrimitives.ReadInt32BigEndian(b);

    /// <summary>An "unset" marker value (length -2).</summary>
    public static readonly byte[] Unset = [0xDE, 0xAD];
}

/// <summary>A minimal raw-socket CQL v4 client for driving the peer frame by frame.</summary>
public sealed class RawClient : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private readonly Queue<Frame> _pending = new();

    private RawClient(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    public IPEndPoint LocalEndPoint => (IPEndPoint)_tcp.Client.LocalEndPoint!;

    public static async Task<RawClient> ConnectAsync(IPAddress ip, int port, int localPort = 0)
    {
        var tcp = new TcpClient(new IPEndPoint(IPAddress.Loopback, localPort));
        await tcp.ConnectAsync(ip, port);
        return new RawClient(tcp);
    }

    public static async Task<RawClient> ConnectAsync(CqlTestNode node, bool startup = true)
    {
        var c = await ConnectAsync(node.Ip, int.Parse(node.Address.Split(':')[1]));
        if (startup)
        {
            var ready = await c.RequestAsync(0x01, new BodyWriter().Short(1).String("CQL_VERSION").String("3.0.0").ToArray());
            Assert.Equal(0x02, ready.Opcode);
        }

        return c;
    }

    public async Task SendRawAsync(byte[] bytes) => await _stream.WriteAsync(bytes);

    public async Task SendAsync(byte opcode, byte[] body, short stream = 0, byte flags = 0, byte version = 4)
    {
        var frame = new byte[9 + body.Length];
        frame[0] = version;
        frame[1] = flags;
        BinaryPrimitives.WriteInt16BigEndian(frame.AsSpan(2), stream);
        frame[4] = opcode;
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(5), body.Length);
        body.CopyTo(frame, 9);
        await _stream.WriteAsync(frame);
    }

    /// <summary>Reads the next frame, or null when the peer closed the connection.</summary>
    public async Task<Frame?> ReadAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        var header = new byte[9];
        try
        {
            var read = 0;
            while (read < 9)
            {
                var n = await _stream.ReadAsync(header.AsMemory(read), cts.Token);
                if (n == 0)
                {
                    return null;
                }

                read += n;
            }

            var body = new byte[BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(5))];
            await _stream.ReadExactlyAsync(body, cts.Token);
            return new Frame(header[0], header[1], BinaryPrimitives.ReadInt16BigEndian(header.AsSpan(2)), header[4], body);
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>The response with this stream id (events and other responses read meanwhile are kept).</summary>
    public async Task<Frame> ResponseAsync(short stream, TimeSpan? timeout = null)
    {
        foreach (var f in _pending)
        {
            if (f.Stream == stream)
            {
                var keep = _pending.Where(x => x != f).ToList();
                _pending.Clear();
                keep.ForEach(_pending.Enqueue);
                return f;
            }
        }

        while (true)
        {
            var f = await ReadAsync(timeout) ?? throw new IOException("connection closed");
            if (f.Stream == stream)
            {
                return f;
            }

            _pending.Enqueue(f);
        }
    }

    /// <summary>The next EVENT frame (stream -1).</summary>
    public async Task<Frame> EventAsync(TimeSpan? timeout = null) => await ResponseAsync(-1, timeout ?? TimeSpan.FromSeconds(10));

    public async Task<Frame> RequestAsync(byte opcode, byte[] body, short stream = 0, byte flags = 0)
    {
        await SendAsync(opcode, body, stream, flags);
        return await ResponseAsync(stream);
    }

    public static byte[] QueryBody(string query, IReadOnlyList<byte[]?>? values = null, int pageSize = 0, byte[]? pagingState = null,
        long? timestamp = null, short consistency = 1)
    {
        var w = new BodyWriter().LongString(query);
        return Parameters(w, values, pageSize, pagingState, timestamp, consistency).ToArray();
    }

    public static BodyWriter Parameters(BodyWriter w, IReadOnlyList<byte[]?>? values, int pageSize = 0, byte[]? pagingState = null,
        long? timestamp = null, short consistency = 1)
    {
        byte flags = 0;
        if (values is not null)
        {
            flags |= 0x01;
        }

        if (pageSize > 0)
        {
            flags |= 0x04;
        }

        if (pagingState is not null)
        {
            flags |= 0x08;
        }

        if (timestamp is not null)
        {
            flags |= 0x20;
        }

        w.Short(consistency).Byte(flags);
        if (values is not null)
        {
            w.Short(values.Count);
            foreach (var v in values)
            {
                if (ReferenceEquals(v, V.Unset))
                {
                    w.Int(-2);
                }
                else
                {
                    w.Bytes(v);
                }
            }
        }

        if (pageSize > 0)
        {
            w.Int(pageSize);
        }

        if (pagingState is not null)
        {
            w.Bytes(pagingState);
        }

        if (timestamp is not null)
        {
            w.Long(timestamp.Value);
        }

        return w;
    }

    public async Task<Frame> QueryAsync(string query, IReadOnlyList<byte[]?>? values = null, long? timestamp = null, short stream = 0) =>
        await RequestAsync(0x07, QueryBody(query, values, timestamp: timestamp), stream);

    /// <summary>Runs a query that must succeed and returns its rows (empty for non-row results).</summary>
    public async Task<List<byte[]?[]>> RowsAsync(string query, IReadOnlyList<byte[]?>? values = null, long? timestamp = null)
    {
        var f = await QueryAsync(query, values, timestamp);
        if (f.Opcode == 0x00)
        {
            var (code, message) = f.Error();
            Assert.Fail($"'{query}' failed: 0x{code:X4} {message}");
        }

        var r = f.Reader();
        return r.Int() == 2 ? r.Rows().Rows : [];
    }

    public async Task<(byte[] Id, List<int> PkIndexes)> PrepareAsync(string query)
    {
        var f = await RequestAsync(0x09, new BodyWriter().LongString(query).ToArray());
        Assert.Equal(0x08, f.Opcode);
        var r = f.Reader();
        Assert.Equal(4, r.Int());
        var id = r.ShortBytes();
        r.Int();
        r.Int();
        var pkCount = r.Int();
        return (id, [.. Enumerable.Range(0, pkCount).Select(_ => (int)r.Short())]);
    }

    public async Task<Frame> ExecuteAsync(byte[] id, IReadOnlyList<byte[]?> values, short stream = 0) =>
        await RequestAsync(0x0A, Parameters(new BodyWriter().ShortBytes(id), values).ToArray(), stream);

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync();
        _tcp.Dispose();
    }
}
