using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Gateway.Cql.Protocol;

namespace Gateway.Cql.Tests;

/// <summary>A request frame as the scripted server received it.</summary>
internal sealed record ServerRequest(CqlOpcode Opcode, short Stream, byte[] Body)
{
    /// <summary>The [long string] at the start of a QUERY or PREPARE body.</summary>
    public string Text
    {
        get
        {
            var n = BinaryPrimitives.ReadInt32BigEndian(Body);
            return Encoding.UTF8.GetString(Body, 4, n);
        }
    }
}

/// <summary>One accepted client connection of the scripted server.</summary>
internal sealed class ServerConnection(Socket socket, int shard)
{
    /// <summary>The shard this connection "landed on" (reported as SCYLLA_SHARD when the server is sharded).</summary>
    public int Shard { get; } = shard;

    private readonly SemaphoreSlim _write = new(1, 1);

    public Socket Socket { get; } = socket;

    public async Task SendAsync(byte[] frame)
    {
        await _write.WaitAsync();
        try
        {
            await Socket.SendAsync(frame, SocketFlags.None);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The client went away; the test decides whether that matters.
        }
        finally
        {
            _write.Release();
        }
    }

    public Task ReplyAsync(ServerRequest request, CqlOpcode opcode, byte[] body) => SendAsync(TestWire.Frame(opcode, request.Stream, body));

    public void Drop()
    {
        try
        {
            Socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Dropped before, or gone already.
        }

        Socket.Dispose();
    }
}

/// <summary>
/// A tiny CQL node for tests: answers the handshake and the system tables itself and hands every other request to
/// <see cref="Handler"/>, which may answer in any order or not at all.
/// </summary>
internal sealed class ScriptedCqlServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly TcpListener? _shardAwareListener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accept;
    private readonly Task _acceptShardAware = Task.CompletedTask;

    /// <summary>A plain node, or with <paramref name="shards"/> a Scylla-like one: connections to the normal port land
    /// on shards in turn, and with <paramref name="shardAwarePort"/> a second port puts a connection on the shard
    /// its source port selects (port modulo shard count).</summary>
    public ScriptedCqlServer(int shards = 0, bool shardAwarePort = false)
    {
        Shards = shards;
        _listener.Start();
        _accept = AcceptLoopAsync(_listener, aware: false);
        if (shards > 0)
        {
            SupportedOptions["SCYLLA_NR_SHARDS"] = [shards.ToString(System.Globalization.CultureInfo.InvariantCulture)];
            SupportedOptions["SCYLLA_SHARDING_ALGORITHM"] = ["biased-token-round-robin"];
            SupportedOptions["SCYLLA_SHARDING_IGNORE_MSB"] = ["12"];
            if (shardAwarePort)
            {
                _shardAwareListener = new TcpListener(IPAddress.Loopback, 0);
                _shardAwareListener.Start();
                SupportedOptions["SCYLLA_SHARD_AWARE_PORT"] = [((IPEndPoint)_shardAwareListener.LocalEndpoint).Port.ToString(System.Globalization.CultureInfo.InvariantCulture)];
                _acceptShardAware = AcceptLoopAsync(_shardAwareListener, aware: true);
            }
        }
    }

    public int Shards { get; }

    public int AcceptedOnShardAwarePort;

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public string Address => $"127.0.0.1:{Port}";

    public ConcurrentQueue<ServerConnection> Connections { get; } = new();

    public ConcurrentQueue<ServerRequest> Received { get; } = new();

    public int Accepted;

    public Dictionary<string, string[]> SupportedOptions { get; } = new() { ["CQL_VERSION"] = ["3.0.0"], ["COMPRESSION"] = [] };

    /// <summary>Tokens this node reports in system.local.</summary>
    public string[] Tokens { get; set; } = ["0"];

    /// <summary>Rows of system.peers: (address, native_port, tokens).</summary>
    public List<(IPAddress Address, int Port, string[] Tokens)> Peers { get; } = [];

    public bool AnswerHeartbeats { get; set; } = true;

    public bool RefuseHandshake { get; set; }

    /// <summary>When set, STARTUP is answered with AUTHENTICATE naming this class, and AUTH_RESPONSE goes to the handler.</summary>
    public string? AuthenticateWith { get; set; }

    public Func<ServerConnection, ServerRequest, Task>? Handler { get; set; }

    public void DropAll()
    {
        while (Connections.TryDequeue(out var c))
        {
            c.Drop();
        }
    }

    public async Task BroadcastAsync(byte[] frame)
    {
        foreach (var c in Connections)
        {
            await c.SendAsync(frame);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        _shardAwareListener?.Stop();
        DropAll();
        try
        {
            await _accept;
            await _acceptShardAware;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptLoopAsync(TcpListener listener, bool aware)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                return;
            }

            var ordinal = Interlocked.Increment(ref Accepted);
            if (aware)
            {
                Interlocked.Increment(ref AcceptedOnShardAwarePort);
            }

            var shard = Shards == 0 ? -1 : aware ? ((IPEndPoint)socket.RemoteEndPoint!).Port % Shards : ordinal % Shards;
            var connection = new ServerConnection(socket, shard);
            Connections.Enqueue(connection);
            _ = Task.Run(() => ServeAsync(connection));
        }
    }

    private async Task ServeAsync(ServerConnection connection)
    {
        var header = new byte[9];
        try
        {
            while (true)
            {
                if (!await ReadExactlyAsync(connection.Socket, header))
                {
                    return;
                }

                var body = new byte[BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(5))];
                if (!await ReadExactlyAsync(connection.Socket, body))
                {
                    return;
                }

                var request = new ServerRequest((CqlOpcode)header[4], BinaryPrimitives.ReadInt16BigEndian(header.AsSpan(2)), body);
                Received.Enqueue(request);
                await AnswerAsync(connection, request);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task AnswerAsync(ServerConnection c, ServerRequest r)
    {
        switch (r.Opcode)
        {
            case CqlOpcode.Options:
                if (AnswerHeartbeats)
                {
                    var options = new Dictionary<string, string[]>(SupportedOptions);
                    if (c.Shard >= 0)
                    {
                        options["SCYLLA_SHARD"] = [c.Shard.ToString(System.Globalization.CultureInfo.InvariantCulture)];
                    }

                    await c.ReplyAsync(r, CqlOpcode.Supported, TestWire.Supported(options));
                }

                return;
            case CqlOpcode.Startup when RefuseHandshake:
                c.Drop();
                return;
            case CqlOpcode.Startup when AuthenticateWith is { } authenticator:
                await c.ReplyAsync(r, CqlOpcode.Authenticate, TestWire.Body(b => b.WriteString(authenticator)));
                return;
            case CqlOpcode.Startup:
            case CqlOpcode.Register:
                await c.ReplyAsync(r, CqlOpcode.Ready, []);
                return;
            case CqlOpcode.Query when r.Text.StartsWith("SELECT * FROM system.local", StringComparison.Ordinal):
                await c.ReplyAsync(r, CqlOpcode.Result, TestWire.Rows(
                    ["key", "data_center", "rack", "tokens", "partitioner", "host_id"],
                    [TestWire.T(CqlTypeCode.Varchar), TestWire.T(CqlTypeCode.Varchar), TestWire.T(CqlTypeCode.Varchar), TestWire.SetOfText, TestWire.T(CqlTypeCode.Varchar), TestWire.T(CqlTypeCode.Uuid)],
                    [["local", "dc1", "r1", Tokens, "org.apache.cassandra.dht.Murmur3Partitioner", Guid.NewGuid()]]));
                return;
            case CqlOpcode.Query when r.Text.StartsWith("SELECT * FROM system.peers", StringComparison.Ordinal):
                await c.ReplyAsync(r, CqlOpcode.Result, TestWire.Rows(
                    ["peer", "rpc_address", "native_port", "data_center", "rack", "tokens", "host_id"],
                    [TestWire.T(CqlTypeCode.Inet), TestWire.T(CqlTypeCode.Inet), TestWire.T(CqlTypeCode.Int), TestWire.T(CqlTypeCode.Varchar), TestWire.T(CqlTypeCode.Varchar), TestWire.SetOfText, TestWire.T(CqlTypeCode.Uuid)],
                    Peers.Select(p => new object?[] { p.Address, p.Address, p.Port, "dc1", "r1", p.Tokens, Guid.NewGuid() }).ToList()));
                return;
        }

        if (Handler is { } handler)
        {
            await handler(c, r);
        }
        else
        {
            await c.ReplyAsync(r, CqlOpcode.Result, TestWire.Void());
        }
    }

    private static async Task<bool> ReadExactlyAsync(Socket socket, byte[] buffer)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None);
            if (n == 0)
            {
                return false;
            }

            read += n;
        }

        return true;
    }
}
