using System.IO.Pipelines;
using System.Text;
using BenchmarkDotNet.Attributes;
using Gateway.Benchmarks.Support;
using Gateway.Protocol;
using Gateway.WebSockets;
using Gateway.WebSockets.Internal;

namespace Gateway.Benchmarks;

/// <summary>
/// The opening handshake: once per connection, so it is allowed to allocate (strings, the header list, the response);
/// what matters is that it stays in the low microseconds and does not grow with segmentation.
/// </summary>
[MemoryDiagnoser]
public class HandshakeBenchmarks
{
    /// <summary>
    /// What Chrome sends when a page opens <c>new WebSocket(url, ["chatgw.v1"])</c>: request line and 10 headers, 502 bytes.
    /// </summary>
    internal const string BrowserRequest =
        "GET /v1/ws?client=web-2.14.0 HTTP/1.1\r\n" +
        "Host: chat.eu-west.example.com\r\n" +
        "Connection: Upgrade\r\n" +
        "Upgrade: websocket\r\n" +
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n" +
        "Origin: https://chat.eu-west.example.com\r\n" +
        "Sec-WebSocket-Version: 13\r\n" +
        "Accept-Language: en-US,en;q=0.9,de-DE;q=0.8,de;q=0.7\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" +
        "Sec-WebSocket-Protocol: chatgw.v1\r\n" +
        "\r\n";

    private static readonly Func<HandshakeRequest, HandshakeDecision> Accept =
        static _ => HandshakeDecision.Accept(ProtocolConstants.SubProtocol);

    private readonly WebSocketOptions _options = new();
    private byte[] _request = [];
    private Pipe _singleIn = null!;
    private Pipe _multiIn = null!;
    private Pipe _out = null!;
    private DuplexPipe _single = null!;
    private DuplexPipe _multi = null!;

    [GlobalSetup]
    public void Setup()
    {
        _request = Encoding.ASCII.GetBytes(BrowserRequest);

        // 4 KiB blocks hold the whole request in one segment. The multi-segment pipe rents 128-byte blocks (the
        // smallest ArrayPool bucket), so the 502-byte request spans 4 or more segments and the search for the blank line
        // and the copy of the head both cross segment boundaries.
        _singleIn = new Pipe(new PipeOptions(minimumSegmentSize: 4096, useSynchronizationContext: false));
        _multiIn = new Pipe(new PipeOptions(pool: System.Buffers.MemoryPool<byte>.Shared, minimumSegmentSize: 128,
            useSynchronizationContext: false));
        _out = new Pipe(new PipeOptions(useSynchronizationContext: false));
        _single = new DuplexPipe(_singleIn.Reader, _out.Writer);
        _multi = new DuplexPipe(_multiIn.Reader, _out.Writer);

        // Fail fast if the setup does not exercise what the names claim.
        if (!Run(_single, _singleIn, whole: true) || !Run(_multi, _multiIn, whole: false))
        {
            throw new InvalidOperationException("The benchmark request was not accepted.");
        }
    }

    /// <summary>Validation alone: request line, 10 headers, RFC 6455 checks, from the head already copied out of the pipe.</summary>
    [Benchmark]
    public int ParseHead()
    {
        var request = HandshakeParser.Parse(_request, out int status, out _);
        return status + request!.Headers.Count;
    }

    /// <summary>The whole server side from a one-segment read: find the blank line, parse, decide, write the 101.</summary>
    [Benchmark]
    public bool AcceptSingleSegment() => Run(_single, _singleIn, whole: true);

    /// <summary>The same request spread over 128-byte pipe segments (4 or more).</summary>
    [Benchmark]
    public bool AcceptMultiSegment() => Run(_multi, _multiIn, whole: false);

    /// <summary>Sec-WebSocket-Accept: SHA-1 of key + GUID, base64.</summary>
    [Benchmark]
    public string AcceptKey() => WebSocketHandshake.ComputeAcceptKey("dGhlIHNhbXBsZSBub25jZQ==");

    private bool Run(DuplexPipe transport, Pipe input, bool whole)
    {
        WriteRequest(input.Writer, whole);
        var flush = input.Writer.FlushAsync();
        var accept = WebSocketHandshake.AcceptAsync(transport, _options, Accept, CancellationToken.None);
        if (!flush.IsCompletedSuccessfully || !accept.IsCompletedSuccessfully)
        {
            // Every await inside completes synchronously when the bytes are already there; if one did not,
            // the numbers would include a thread hop nobody asked for.
            throw new InvalidOperationException("The handshake did not complete synchronously.");
        }

        // Read back the 101 so the output pipe is empty for the next invocation.
        if (!_out.Reader.TryRead(out var response))
        {
            throw new InvalidOperationException("No response was written.");
        }

        _out.Reader.AdvanceTo(response.Buffer.End);
        return accept.Result.Accepted;
    }

    /// <summary>
    /// Whole: one span big enough for the request, so the pipe starts a fresh block when the current one is short and the
    /// request always lands in one segment. Otherwise: whatever space the current 128-byte block has, block after block.
    /// </summary>
    private void WriteRequest(PipeWriter writer, bool whole)
    {
        ReadOnlySpan<byte> left = _request;
        while (!left.IsEmpty)
        {
            var span = writer.GetSpan(whole ? left.Length : 1);
            int n = Math.Min(span.Length, left.Length);
            left[..n].CopyTo(span);
            writer.Advance(n);
            left = left[n..];
        }
    }
}
