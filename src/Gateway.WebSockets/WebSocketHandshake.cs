using System.Buffers;
using System.IO.Pipelines;
using System.Security.Cryptography;
using System.Text;
using Gateway.WebSockets.Internal;

namespace Gateway.WebSockets;

/// <summary>The server side of the RFC 6455 §4.2 opening handshake over a raw transport.</summary>
public static class WebSocketHandshake
{
    /// <summary>RFC 6455 §1.3: the GUID appended to the client's key before hashing.</summary>
    private const string AcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

    private static ReadOnlySpan<byte> HeaderTerminator => "\r\n\r\n"u8;

    /// <summary>
    /// Reads the HTTP/1.1 upgrade request from <paramref name="transport"/>, validates the RFC 6455 parts, lets
    /// <paramref name="decide"/> apply the application's checks, and writes the answer.
    /// </summary>
    /// <remarks>
    /// The request may arrive in any segmentation. The request line plus headers are bounded by
    /// <see cref="WebSocketOptions.MaxHandshakeBytes"/> (431 beyond) and by <see cref="WebSocketOptions.HandshakeTimeout"/>
    /// (nothing written; result status 408). Protocol errors are answered here: 400 malformed or missing parts,
    /// 405 non-GET, 426 version other than 13. On accept, "101 Switching Protocols" is written and any bytes that
    /// followed the request (frames sent in the same write) stay in the input for the <see cref="WebSocketConnection"/>.
    /// Every rejection carries "Connection: close" and a text body; the caller then closes the transport.
    /// Exceptions thrown by <paramref name="decide"/> propagate.
    /// </remarks>
    /// <param name="transport">The raw connection.</param>
    /// <param name="options">Limits.</param>
    /// <param name="decide">Application checks (path, auth, subprotocol); called once with a valid request.</param>
    /// <param name="cancellationToken">Cancels the handshake (throws <see cref="OperationCanceledException"/>).</param>
    public static ValueTask<HandshakeResult> AcceptAsync(IDuplexPipe transport, WebSocketOptions options,
        Func<HandshakeRequest, HandshakeDecision> decide, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(decide);
        return AcceptAsync(transport, options, request => new ValueTask<HandshakeDecision>(decide(request)), cancellationToken);
    }

    /// <summary>As the overload with an inline decision, for checks that may have to wait (e.g. fetching a signing key
    /// that a token names and the server has not seen yet): the connection waits, no thread does.</summary>
    /// <param name="transport">The raw connection.</param>
    /// <param name="options">Limits.</param>
    /// <param name="decide">Application checks; called once with a valid request.</param>
    /// <param name="cancellationToken">Cancels the handshake (throws <see cref="OperationCanceledException"/>).</param>
    public static async ValueTask<HandshakeResult> AcceptAsync(IDuplexPipe transport, WebSocketOptions options,
        Func<HandshakeRequest, ValueTask<HandshakeDecision>> decide, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(transport);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(decide);

        byte[]? head;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            timeout.CancelAfter(options.HandshakeTimeout);
            try
            {
                (head, var failure) = await ReadHeadAsync(transport.Input, options.MaxHandshakeBytes, timeout.Token)
                    .ConfigureAwait(false);
                if (head is null)
                {
                    if (failure == 431)
                    {
                        await WriteErrorAsync(transport.Output, 431, "Request header fields too large.", null,
                            cancellationToken).ConfigureAwait(false);
                    }
                    else if (failure == 400)
                    {
                        await WriteErrorAsync(transport.Output, 400, "Not an HTTP request.", null, cancellationToken).ConfigureAwait(false);
                    }

                    return new HandshakeResult(false, null, failure, null, null);
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // A stalled handshake is dropped without an answer: a client that cannot send a few hundred bytes
                // within the timeout would not read one either.
                return new HandshakeResult(false, null, 408, null, null);
            }
        }

        var request = HandshakeParser.Parse(head, out int status, out string? error);
        if (request is null || status != 0)
        {
            string? extra = status == 405 ? "Allow: GET\r\n" : status == 426 ? "Sec-WebSocket-Version: 13\r\n" : null;
            await WriteErrorAsync(transport.Output, status, error!, extra, cancellationToken).ConfigureAwait(false);
            return new HandshakeResult(false, request, status, null, null);
        }

        var decision = await decide(request).ConfigureAwait(false);
        if (!decision.IsAccepted)
        {
            int code = decision.StatusCode == 0 ? 500 : decision.StatusCode;
            await WriteErrorAsync(transport.Output, code, decision.Reason ?? "Rejected.", null, cancellationToken)
                .ConfigureAwait(false);
            return new HandshakeResult(false, request, code, decision.State, null);
        }

        if (decision.SubProtocol is { } chosen && !request.SubProtocols.Contains(chosen, StringComparer.Ordinal))
        {
            // RFC 6455 §4.1: a client must fail the connection when the server confirms a protocol it did not offer.
            throw new InvalidOperationException($"Subprotocol '{chosen}' was not offered by the client.");
        }

        var response = new StringBuilder(160)
            .Append("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
            .Append(ComputeAcceptKey(request.SecWebSocketKey!))
            .Append("\r\n");
        if (decision.SubProtocol is not null)
        {
            response.Append("Sec-WebSocket-Protocol: ").Append(decision.SubProtocol).Append("\r\n");
        }

        response.Append("\r\n");
        await WriteAsciiAsync(transport.Output, response.ToString(), cancellationToken).ConfigureAwait(false);
        return new HandshakeResult(true, request, 101, decision.State, decision.SubProtocol);
    }

    /// <summary>RFC 6455 §4.2.2: base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).</summary>
    /// <param name="secWebSocketKey">The client's Sec-WebSocket-Key, as sent.</param>
    public static string ComputeAcceptKey(string secWebSocketKey)
    {
        ArgumentNullException.ThrowIfNull(secWebSocketKey);
        byte[] input = Encoding.ASCII.GetBytes(secWebSocketKey + AcceptGuid);
        return Convert.ToBase64String(SHA1.HashData(input));
    }

    /// <summary>
    /// Reads until the blank line that ends the headers. Returns the head (including the terminator) and leaves what
    /// follows in the pipe; or null with 431 (too large), 400 (not an HTTP request line) or 0 (stream ended first).
    /// </summary>
    private static async ValueTask<(byte[]? Head, int Failure)> ReadHeadAsync(PipeReader input, int maxBytes,
        CancellationToken cancellationToken)
    {
        // Bytes already searched; the next search starts 3 bytes earlier so a terminator straddling reads is found,
        // and a request trickling in one byte at a time costs O(n) in total, not O(n^2).
        long searched = 0;
        while (true)
        {
            var result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;

            // Enforce the limit by slicing before the search: the terminator must lie within the first maxBytes.
            var window = buffer.Length > maxBytes ? buffer.Slice(0, maxBytes) : buffer;
            long from = Math.Max(0, searched - (HeaderTerminator.Length - 1));
            var reader = new SequenceReader<byte>(window.Slice(from));
            if (reader.TryReadTo(out ReadOnlySequence<byte> _, HeaderTerminator, advancePastDelimiter: true))
            {
                var end = reader.Position;
                byte[] head = window.Slice(0, end).ToArray();
                input.AdvanceTo(end);
                return (head, 0);
            }

            // Bytes that cannot start a request line (a TLS ClientHello on the plain port, random data) are refused
            // at once instead of holding a handshake slot until the timeout.
            if (CannotStartRequestLine(window))
            {
                input.AdvanceTo(buffer.End);
                return (null, 400);
            }

            searched = window.Length;
            if (buffer.Length >= maxBytes)
            {
                input.AdvanceTo(buffer.End);
                return (null, 431);
            }

            if (result.IsCompleted)
            {
                input.AdvanceTo(buffer.End);
                return (null, 0);
            }

            // Nothing consumed, everything examined: the next read waits for new bytes instead of spinning.
            input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>Longer than any registered HTTP method (the longest, UPDATEREDIRECTREF, has 17 characters).</summary>
    private const int MaxMethodLength = 24;

    /// <summary>
    /// True when the bytes received so far cannot be the start of an HTTP request line: the method is a token of
    /// RFC 9110 <c>tchar</c>s followed by a space. Only the first <see cref="MaxMethodLength"/> + 1 bytes are looked at.
    /// </summary>
    private static bool CannotStartRequestLine(ReadOnlySequence<byte> received)
    {
        Span<byte> start = stackalloc byte[MaxMethodLength + 1];
        var n = (int)Math.Min(received.Length, start.Length);
        received.Slice(0, n).CopyTo(start);
        for (var i = 0; i < n; i++)
        {
            var b = start[i];
            if (b == (byte)' ')
            {
                return i == 0;
            }

            if (!IsTChar(b))
            {
                return true;
            }
        }

        return n > MaxMethodLength;
    }

    private static bool IsTChar(byte b) =>
        char.IsAsciiLetterOrDigit((char)b) || b is (byte)'!' or (byte)'#' or (byte)'$' or (byte)'%' or (byte)'&' or (byte)'\''
            or (byte)'*' or (byte)'+' or (byte)'-' or (byte)'.' or (byte)'^' or (byte)'_' or (byte)'`' or (byte)'|' or (byte)'~';

    private static ValueTask WriteErrorAsync(PipeWriter output, int status, string body, string? extraHeaders,
        CancellationToken cancellationToken)
    {
        string text = body + "\r\n";
        int length = Encoding.UTF8.GetByteCount(text);
        string head = $"HTTP/1.1 {status} {ReasonPhrase(status)}\r\nConnection: close\r\n{extraHeaders}" +
            $"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {length}\r\n\r\n";
        return WriteAsciiAsync(output, head + text, cancellationToken);
    }

    private static async ValueTask WriteAsciiAsync(PipeWriter output, string text, CancellationToken cancellationToken)
    {
        // Once per connection: the extra array from GetBytes is irrelevant next to the socket setup.
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        await output.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
    }

    private static string ReasonPhrase(int status) => status switch
    {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    };
}
