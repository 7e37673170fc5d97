using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Gateway.TestUtilities;

/// <summary>A received WebSocket frame as it was on the wire.</summary>
public sealed record RawFrame(bool Fin, int Rsv, byte Opcode, bool Masked, byte[] Payload)
{
    /// <summary>The close code of a close frame (first two payload bytes, big-endian), or null.</summary>
    public ushort? CloseCode => Opcode == RawWebSocketClient.OpClose && Payload.Length >= 2
        ? BinaryPrimitives.ReadUInt16BigEndian(Payload)
        : null;

    /// <summary>The UTF-8 close reason of a close frame.</summary>
    public string CloseReason => Opcode == RawWebSocketClient.OpClose && Payload.Length > 2
        ? Encoding.UTF8.GetString(Payload, 2, Payload.Length - 2)
        : string.Empty;
}

/// <summary>An HTTP response head (and body when Content-Length says so).</summary>
public sealed record RawHttpResponse(int StatusCode, string StatusLine, IReadOnlyDictionary<string, string> Headers, string Body)
{
    /// <summary>A header value by case-insensitive name, or null.</summary>
    public string? Header(string name) =>
        Headers.TryGetValue(name, out var value) ? value : null;
}

/// <summary>
/// A deliberately dumb WebSocket client over a raw TCP socket, for protocol-level tests: it writes whatever bytes it
/// is told (unmasked frames, reserved bits, bad lengths, one byte at a time) and reads frames and EOF with timeouts.
/// Every read takes a timeout; none waits forever.
/// </summary>
public sealed class RawWebSocketClient : IAsyncDisposable
{
    public const byte OpContinuation = 0;
    public const byte OpText = 1;
    public const byte OpBinary = 2;
    public const byte OpClose = 8;
    public const byte OpPing = 9;
    public const byte OpPong = 10;

    /// <summary>Default wait for any single read.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);

    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;

    private RawWebSocketClient(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    /// <summary>Largest frame payload <see cref="ReadFrameAsync"/> accepts (16 MiB).</summary>
    public const int MaxFrameBytes = 16 * 1024 * 1024;

    /// <summary>The key sent by <see cref="HandshakeAsync"/> (fixed, so tests are repeatable).</summary>
    public const string DefaultKey = "dGhlIHNhbXBsZSBub25jZQ==";

    /// <summary>Opens a TCP connection (no handshake).</summary>
    public static async Task<RawWebSocketClient> ConnectAsync(IPEndPoint endPoint, TimeSpan? timeout = null)
    {
        var tcp = new TcpClient { NoDelay = true };
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        await tcp.ConnectAsync(endPoint, cts.Token);
        return new RawWebSocketClient(tcp);
    }

    /// <summary>Connects and completes a standard upgrade; throws unless the server answers 101.</summary>
    public static async Task<RawWebSocketClient> ConnectAndUpgradeAsync(IPEndPoint endPoint, string path = "/",
        string? subProtocol = null)
    {
        var client = await ConnectAsync(endPoint);
        try
        {
            var response = await client.HandshakeAsync(path, subProtocol);
            if (response.StatusCode != 101)
            {
                throw new InvalidOperationException($"Upgrade refused: {response.StatusLine} {response.Body}");
            }

            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>A well-formed upgrade request; <paramref name="extraHeaders"/> are appended verbatim (each "Name: value").</summary>
    public static string BuildUpgradeRequest(string path = "/", string? subProtocol = null, string key = DefaultKey,
        string version = "13", string method = "GET", params string[] extraHeaders)
    {
        var sb = new StringBuilder()
            .Append(method).Append(' ').Append(path).Append(" HTTP/1.1\r\n")
            .Append("Host: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
        if (key.Length > 0)
        {
            sb.Append("Sec-WebSocket-Key: ").Append(key).Append("\r\n");
        }

        if (version.Length > 0)
        {
            sb.Append("Sec-WebSocket-Version: ").Append(version).Append("\r\n");
        }

        if (subProtocol is not null)
        {
            sb.Append("Sec-WebSocket-Protocol: ").Append(subProtocol).Append("\r\n");
        }

        foreach (var header in extraHeaders)
        {
            sb.Append(header).Append("\r\n");
        }

        return sb.Append("\r\n").ToString();
    }

    /// <summary>RFC 6455 accept value for <paramref name="key"/>, computed independently of the server code.</summary>
    public static string ExpectedAccept(string key = DefaultKey) =>
        Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));

    /// <summary>Sends a standard upgrade request and reads the response head.</summary>
    public async Task<RawHttpResponse> HandshakeAsync(string path = "/", string? subProtocol = null)
    {
        await SendRawAsync(Encoding.ASCII.GetBytes(BuildUpgradeRequest(path, subProtocol)));
        return await ReadHttpResponseAsync();
    }

    /// <summary>Writes raw bytes in one write.</summary>
    public async Task SendRawAsync(ReadOnlyMemory<byte> bytes)
    {
        using var cts = new CancellationTokenSource(DefaultTimeout);
        await _stream.WriteAsync(bytes, cts.Token);
        await _stream.FlushAsync(cts.Token);
    }

    /// <summary>Writes raw bytes one byte per write (each a separate TCP segment with Nagle off).</summary>
    public async Task SendBytewiseAsync(ReadOnlyMemory<byte> bytes, TimeSpan? pause = null)
    {
        for (int i = 0; i < bytes.Length; i++)
        {
            await SendRawAsync(bytes.Slice(i, 1));
            if (pause is { } p)
            {
                await Task.Delay(p);
            }
        }
    }

    /// <summary>
    /// Builds a frame with any header bits. <paramref name="lengthBytes"/> forces the length encoding (0 = minimal,
    /// 2 = 16-bit, 8 = 64-bit); <paramref name="declaredLength"/> overrides the announced length (payload is still
    /// <paramref name="payload"/>), for lying headers.
    /// </summary>
    public static byte[] BuildFrame(byte opcode, ReadOnlySpan<byte> payload, bool fin = true, bool mask = true,
        int rsv = 0, byte[]? maskKey = null, int lengthBytes = 0, ulong? declaredLength = null)
    {
        ulong length = declaredLength ?? (ulong)payload.Length;
        int extra = lengthBytes != 0 ? lengthBytes : length < 126 ? 0 : length <= ushort.MaxValue ? 2 : 8;
        int headerLength = 2 + extra + (mask ? 4 : 0);
        var frame = new byte[headerLength + payload.Length];
        frame[0] = (byte)((fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0F));
        byte maskBit = mask ? (byte)0x80 : (byte)0;
        switch (extra)
        {
            case 0:
                frame[1] = (byte)(maskBit | (byte)length);
                break;
            case 2:
                frame[1] = (byte)(maskBit | 126);
                BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(2), (ushort)length);
                break;
            default:
                frame[1] = (byte)(maskBit | 127);
                BinaryPrimitives.WriteUInt64BigEndian(frame.AsSpan(2), length);
                break;
        }

        var body = frame.AsSpan(headerLength);
        payload.CopyTo(body);
        if (mask)
        {
            byte[] key = maskKey ?? RandomNumberGenerator.GetBytes(4);
            key.AsSpan(0, 4).CopyTo(frame.AsSpan(2 + extra));
            for (int i = 0; i < body.Length; i++)
            {
                body[i] ^= key[i & 3];
            }
        }

        return frame;
    }

    /// <summary>A close frame payload: code (big-endian) then the reason bytes.</summary>
    public static byte[] ClosePayload(ushort code, ReadOnlySpan<byte> reason = default)
    {
        var payload = new byte[2 + reason.Length];
        BinaryPrimitives.WriteUInt16BigEndian(payload, code);
        reason.CopyTo(payload.AsSpan(2));
        return payload;
    }

    /// <summary>Builds and sends one frame in one write.</summary>
    public Task SendFrameAsync(byte opcode, ReadOnlySpan<byte> payload, bool fin = true, bool mask = true, int rsv = 0) =>
        SendRawAsync(BuildFrame(opcode, payload, fin, mask, rsv));

    /// <summary>Reads one frame; throws <see cref="TimeoutException"/> or <see cref="EndOfStreamException"/>.</summary>
    public async Task<RawFrame> ReadFrameAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        var token = cts.Token;
        await FillAsync(2, token);
        byte b0 = _buffer[_start];
        byte b1 = _buffer[_start + 1];
        int len7 = b1 & 0x7F;
        int extra = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
        int maskLength = (b1 & 0x80) != 0 ? 4 : 0;
        await FillAsync(2 + extra + maskLength, token);
        ulong length = extra switch
        {
            0 => (ulong)len7,
            2 => BinaryPrimitives.ReadUInt16BigEndian(_buffer.AsSpan(_start + 2)),
            _ => BinaryPrimitives.ReadUInt64BigEndian(_buffer.AsSpan(_start + 2)),
        };
        if (length > MaxFrameBytes)
        {
            throw new InvalidDataException($"Frame of {length} bytes is larger than this client reads.");
        }

        int headerLength = 2 + extra + maskLength;
        byte[] maskKey = _buffer.AsSpan(_start + 2 + extra, maskLength).ToArray();
        await FillAsync(headerLength + (int)length, token);
        var payload = _buffer.AsSpan(_start + headerLength, (int)length).ToArray();
        if (maskLength != 0)
        {
            for (int i = 0; i < payload.Length; i++)
            {
                payload[i] ^= maskKey[i & 3];
            }
        }

        _start += headerLength + (int)length;
        return new RawFrame((b0 & 0x80) != 0, (b0 >> 4) & 7, (byte)(b0 & 0x0F), maskLength != 0, payload);
    }

    /// <summary>Reads frames until a close frame arrives and returns it (skipping any data or ping before it).</summary>
    public async Task<RawFrame> ReadCloseFrameAsync(TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException("No close frame before the deadline.");
            }

            var frame = await ReadFrameAsync(left);
            if (frame.Opcode == OpClose)
            {
                return frame;
            }
        }
    }

    /// <summary>
    /// Reads and discards until the server closes the TCP connection. Returns true on EOF (or a reset after the
    /// server closed), false when the timeout passes first.
    /// </summary>
    public async Task<bool> ReadUntilEofAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        _start = _end = 0;
        try
        {
            while (true)
            {
                int n = await _stream.ReadAsync(_buffer, cts.Token);
                if (n == 0)
                {
                    return true;
                }
            }
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        catch (IOException)
        {
            // A reset also means the server is gone.
            return true;
        }
    }

    /// <summary>Reads an HTTP response head, plus the body when it has a Content-Length.</summary>
    public async Task<RawHttpResponse> ReadHttpResponseAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        int headEnd;
        while ((headEnd = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n\r\n"u8)) < 0)
        {
            await FillAsync(_end - _start + 1, cts.Token);
        }

        string head = Encoding.ASCII.GetString(_buffer, _start, headEnd);
        _start += headEnd + 4;
        string[] lines = head.Split("\r\n");
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in lines.Skip(1))
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            headers[line[..colon]] = line[(colon + 1)..].Trim();
        }

        string body = string.Empty;
        if (headers.TryGetValue("Content-Length", out var cl) && int.TryParse(cl, out int length) && length > 0)
        {
            await FillAsync(length, cts.Token);
            body = Encoding.UTF8.GetString(_buffer, _start, length);
            _start += length;
        }

        int status = int.Parse(lines[0].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        return new RawHttpResponse(status, lines[0], headers, body);
    }

    /// <summary>Ensures at least <paramref name="count"/> unread bytes are buffered.</summary>
    private async Task FillAsync(int count, CancellationToken token)
    {
        if (_end - _start >= count)
        {
            return;
        }

        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }

        if (count > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(count, _buffer.Length * 2));
        }

        while (_end < count)
        {
            int n;
            try
            {
                n = await _stream.ReadAsync(_buffer.AsMemory(_end), token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"Timed out waiting for {count - _end} more bytes.");
            }

            if (n == 0)
            {
                throw new EndOfStreamException("The server closed the connection.");
            }

            _end += n;
        }
    }

    /// <summary>Closes the socket.</summary>
    public ValueTask DisposeAsync()
    {
        _stream.Dispose();
        _tcp.Dispose();
        return ValueTask.CompletedTask;
    }
}
