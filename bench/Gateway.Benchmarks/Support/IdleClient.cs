using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Gateway.Benchmarks.Support;

/// <summary>
/// A lean chatgw.v1 client for the idle-memory probe: one raw socket, upgrade with a bearer token, one Subscribe, then
/// it sits idle, reading only to answer the server's keep-alive pings (as a real client does; otherwise the server's
/// idle timeout would close it during a long probe). 1 KiB of buffer per connection on the probe side.
/// </summary>
internal sealed class IdleClient : IAsyncDisposable
{
    private const byte HelloTag = 32;
    private const byte ErrorTag = 36;
    private const byte CaughtUpTag = 38;

    private readonly Socket _socket;
    private readonly byte[] _buffer = new byte[1024];
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _start;
    private int _end;
    private Task? _loop;

    private IdleClient(Socket socket) => _socket = socket;

    /// <summary>Set when the server closed the connection or the socket failed after it was ready.</summary>
    public string? Failure { get; private set; }

    /// <summary>Connects, upgrades, subscribes to <paramref name="chatId"/> from seq 0 and waits for its CaughtUp.</summary>
    public static async Task<IdleClient> OpenAsync(IPEndPoint server, IPAddress? localAddress, string path, string token,
        string chatId, TimeSpan timeout)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (localAddress is not null)
        {
            socket.Bind(new IPEndPoint(localAddress, 0));
        }

        var client = new IdleClient(socket);
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await socket.ConnectAsync(server, cts.Token).ConfigureAwait(false);
            var request = $"GET {path} HTTP/1.1\r\nHost: {server}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
                $"Sec-WebSocket-Protocol: chatgw.v1\r\nAuthorization: Bearer {token}\r\n\r\n";
            await socket.SendAsync(Encoding.ASCII.GetBytes(request), SocketFlags.None, cts.Token).ConfigureAwait(false);
            await client.ReadHeadAsync(cts.Token).ConfigureAwait(false);
            await socket.SendAsync(ClientFrames.Mask(ClientFrames.SubscribeFromStart(1, chatId)), SocketFlags.None, cts.Token)
                .ConfigureAwait(false);
            client._loop = client.ReadLoopAsync();
            await client._ready.Task.WaitAsync(cts.Token).ConfigureAwait(false);
            return client;
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task ReadHeadAsync(CancellationToken ct)
    {
        while (true)
        {
            int n = await _socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0)
            {
                throw new IOException("closed during the handshake");
            }

            _end += n;
            int head = _buffer.AsSpan(0, _end).IndexOf("\r\n\r\n"u8);
            if (head < 0)
            {
                if (_end == _buffer.Length)
                {
                    throw new IOException("handshake response too long");
                }

                continue;
            }

            if (!_buffer.AsSpan(0, _end).StartsWith("HTTP/1.1 101"u8))
            {
                throw new IOException("upgrade refused: " + Encoding.ASCII.GetString(_buffer, 0, Math.Min(_end, 80)).Split('\r')[0]);
            }

            _start = head + 4;
            return;
        }
    }

    /// <summary>Reads frames until the connection ends: CaughtUp makes it ready, pings get pongs, Error or close fail it.</summary>
    private async Task ReadLoopAsync()
    {
        try
        {
            while (true)
            {
                while (TryTakeFrame(out byte opcode, out int payloadAt, out int payloadLength))
                {
                    if (opcode == 0x9)
                    {
                        await _socket.SendAsync(ClientFrames.Mask(_buffer.AsSpan(payloadAt, payloadLength), opcode: 0xA), SocketFlags.None)
                            .ConfigureAwait(false);
                    }
                    else if (opcode == 0x8)
                    {
                        Fail("server closed: " + (payloadLength >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(_buffer.AsSpan(payloadAt)) : 1005));
                        return;
                    }
                    else if (opcode == 0x2 && payloadLength >= 2)
                    {
                        byte tag = _buffer[payloadAt + 1];
                        if (tag == CaughtUpTag)
                        {
                            _ready.TrySetResult();
                        }
                        else if (tag == ErrorTag)
                        {
                            Fail("server answered Error");
                        }
                        else if (tag != HelloTag && !_ready.Task.IsCompleted && tag != 33)
                        {
                            Fail($"unexpected frame type {tag} before CaughtUp");
                        }
                    }
                }

                // Compact what is left of a partial frame to the front, then read more.
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
                if (_end == _buffer.Length)
                {
                    Fail("server frame larger than the probe's buffer");
                    return;
                }

                int n = await _socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None).ConfigureAwait(false);
                if (n == 0)
                {
                    Fail("server closed the socket");
                    return;
                }

                _end += n;
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            Fail(e.Message);
        }
    }

    private bool TryTakeFrame(out byte opcode, out int payloadAt, out int payloadLength)
    {
        opcode = 0;
        payloadAt = 0;
        payloadLength = 0;
        int available = _end - _start;
        if (available < 2)
        {
            return false;
        }

        var span = _buffer.AsSpan(_start, available);
        int length = span[1] & 0x7F;
        int header = 2;
        if (length == 126)
        {
            if (available < 4)
            {
                return false;
            }

            length = BinaryPrimitives.ReadUInt16BigEndian(span[2..]);
            header = 4;
        }
        else if (length == 127)
        {
            if (available < 10)
            {
                return false;
            }

            length = (int)Math.Min(BinaryPrimitives.ReadUInt64BigEndian(span[2..]), int.MaxValue);
            header = 10;
        }

        if (available < header + length)
        {
            return false;
        }

        opcode = (byte)(span[0] & 0x0F);
        payloadAt = _start + header;
        payloadLength = length;
        _start += header + length;
        return true;
    }

    private void Fail(string reason)
    {
        Failure ??= reason;
        _ready.TrySetException(new IOException(reason));
    }

    public async ValueTask DisposeAsync()
    {
        _socket.Dispose();
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }
    }
}
