using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Gateway.WebSockets;
using Gateway.WebSockets.Internal;

namespace Gateway.Fuzz;

/// <summary>
/// Target <c>handshake</c>: <see cref="HandshakeParser.Parse"/> on the request head cut from the input, then the whole
/// <c>WebSocketHandshake.AcceptAsync</c> over in-memory pipes fed the same bytes.
/// </summary>
/// <remarks>
/// Contract of the parser: it never throws; it answers 0 (a valid upgrade), 400, 405 or 426; a null request comes
/// with 400 and a message; an accepted request really is a GET over HTTP/1.1 with a Host, "Upgrade: websocket",
/// "Connection: Upgrade", version 13 and a key that decodes to 16 bytes; no parsed name or value can carry a control
/// character (CR/LF injection into what the host logs or echoes). Contract of AcceptAsync: it answers 101 exactly when
/// the parser accepted, otherwise the parser's status (without a complete head: 400 when the first bytes cannot start
/// a request line, else 431 over the size limit, 0 when the stream ends first); the
/// response starts with the status line it reports; bytes after the head stay in the pipe for the connection.
/// </remarks>
public static class HandshakeTarget
{
    public const string Name = "handshake";

    /// <summary>Small enough that the fuzzer reaches the 431 path with short inputs (AFL keeps files under 1 MB).</summary>
    private const int MaxHandshakeBytes = 2048;

    private static ReadOnlySpan<byte> Terminator => "\r\n\r\n"u8;

    public static void Run(ReadOnlySpan<byte> data)
    {
        // Cut the head the way the connection does: up to and including the first blank line; an input without one
        // gets a terminator appended so the parser still sees every byte.
        int end = data.IndexOf(Terminator);
        byte[] head = end >= 0 ? data[..(end + 4)].ToArray() : [.. data, .. Terminator];
        int parserStatus = CheckParser(head);

        CheckAccept(data, end, parserStatus);
    }

    private static int CheckParser(byte[] head)
    {
        var request = HandshakeParser.Parse(head, out int status, out string? error);
        ContractViolationException.Check(status is 0 or 400 or 405 or 426, $"status {status}");
        ContractViolationException.Check((status == 0) == (error is null), $"status {status} with error '{error}'");
        if (request is null)
        {
            ContractViolationException.Check(status == 400, $"no request with status {status}");
            return status;
        }

        ContractViolationException.Check(request.Path.StartsWith('/'), $"path '{request.Path}' is not origin-form");
        ContractViolationException.Check(!request.Path.Contains('?', StringComparison.Ordinal), "path keeps its query");
        foreach (var (name, value) in request.Headers)
        {
            ContractViolationException.Check(name.Length > 0 && !HasControl(name) && !name.Contains(':', StringComparison.Ordinal),
                $"header name '{Escape(name)}'");
            ContractViolationException.Check(!HasControl(value), $"header value '{Escape(value)}'");
        }

        foreach (var protocol in request.SubProtocols)
        {
            ContractViolationException.Check(protocol.Length > 0 && protocol.Trim() == protocol && !protocol.Contains(',', StringComparison.Ordinal),
                $"subprotocol entry '{Escape(protocol)}'");
        }

        if (status == 0)
        {
            ContractViolationException.Check(request.Method == "GET", $"accepted method {request.Method}");
            ContractViolationException.Check(request.HttpVersion == "HTTP/1.1", $"accepted version {request.HttpVersion}");
            ContractViolationException.Check(!string.IsNullOrEmpty(request.Host), "accepted without Host");
            ContractViolationException.Check(request.HeaderContainsToken("Upgrade", "websocket"), "accepted without Upgrade");
            ContractViolationException.Check(request.HeaderContainsToken("Connection", "Upgrade"), "accepted without Connection: Upgrade");
            ContractViolationException.Check(request.SecWebSocketVersion == "13", "accepted another version");
            var key = request.SecWebSocketKey;
            Span<byte> decoded = stackalloc byte[18];
            if (key is not { Length: 24 } || !Convert.TryFromBase64String(key, decoded, out int n) || n != 16)
            {
                ContractViolationException.Throw($"accepted key '{key}'");
            }

            // SHA-1 is 20 bytes: base64 of 20 bytes is ceil(20 / 3) * 4 = 28 characters.
            ContractViolationException.Check(WebSocketHandshake.ComputeAcceptKey(key).Length == 28, "accept key length");
        }

        return status;
    }

    private static void CheckAccept(ReadOnlySpan<byte> data, int terminatorAt, int parserStatus)
    {
        var input = new Pipe(new PipeOptions(pauseWriterThreshold: 0, useSynchronizationContext: false));
        var output = new Pipe(new PipeOptions(pauseWriterThreshold: 0, useSynchronizationContext: false));
        input.Writer.Write(data);
        input.Writer.Complete();

        var transport = new DuplexPipe(input.Reader, output.Writer);
        var options = new WebSocketOptions { MaxHandshakeBytes = MaxHandshakeBytes, HandshakeTimeout = TimeSpan.FromSeconds(5) };
        int decided = 0;
        var accept = WebSocketHandshake.AcceptAsync(transport, options, request =>
        {
            decided++;
            string? protocol = request.SubProtocols.Contains("chatgw.v1", StringComparer.Ordinal) ? "chatgw.v1" : null;
            return HandshakeDecision.Accept(protocol);
        }, CancellationToken.None).AsTask();

        // The input is complete and the output never pauses, so nothing here waits on I/O: 5 s means a hang.
        ContractViolationException.Check(accept.Wait(TimeSpan.FromSeconds(5)), "AcceptAsync did not finish");
        var result = accept.Result;

        bool withinLimit = terminatorAt >= 0 && terminatorAt + 4 <= MaxHandshakeBytes;
        int expected = withinLimit ? (parserStatus == 0 ? 101 : parserStatus)
            : CannotStartRequestLine(data) ? 400
            : data.Length >= MaxHandshakeBytes ? 431 : 0;
        ContractViolationException.Check(result.StatusCode == expected,
            $"AcceptAsync answered {result.StatusCode}, expected {expected} (parser {parserStatus}, terminator at {terminatorAt})");
        ContractViolationException.Check(result.Accepted == (expected == 101), "Accepted disagrees with the status");
        ContractViolationException.Check(decided == (expected == 101 ? 1 : 0), $"decide called {decided} times");

        output.Writer.Complete();
        var written = ReadAll(output.Reader);
        if (expected == 0)
        {
            ContractViolationException.Check(written.Length == 0, "answered a request that never ended");
            return;
        }

        string statusLine = $"HTTP/1.1 {expected} ";
        ContractViolationException.Check(written.AsSpan().StartsWith(Encoding.ASCII.GetBytes(statusLine)),
            $"response does not start with '{statusLine}'");
        ContractViolationException.Check(written.AsSpan().EndsWith(Terminator) || expected != 101, "101 response not terminated");

        if (expected == 101)
        {
            // What followed the head is the first WebSocket bytes: it must still be in the input, untouched.
            var rest = ReadAll(input.Reader);
            ContractViolationException.Check(rest.AsSpan().SequenceEqual(data[(terminatorAt + 4)..]), "bytes after the head were lost");
        }
    }

    /// <summary>The oracle for the early refusal, written from RFC 9110 apart from the product's code: a request line
    /// starts with a method token (tchars, at most 24 of them, longer than any registered method) and a space.</summary>
    private static bool CannotStartRequestLine(ReadOnlySpan<byte> data)
    {
        const string tchars = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        for (int i = 0; i < Math.Min(data.Length, 25); i++)
        {
            if (data[i] == (byte)' ')
            {
                return i == 0;
            }

            if (!tchars.Contains((char)data[i], StringComparison.Ordinal))
            {
                return true;
            }
        }

        return data.Length > 24;
    }

    private static byte[] ReadAll(PipeReader reader)
    {
        // Both pipes are complete here, so one synchronous read returns everything.
        if (!reader.TryRead(out var result))
        {
            return [];
        }

        var bytes = result.Buffer.ToArray();
        reader.AdvanceTo(result.Buffer.End);
        reader.Complete();
        return bytes;
    }

    private static bool HasControl(string s)
    {
        foreach (char c in s)
        {
            if ((c < 0x20 && c != '\t') || c == 0x7F)
            {
                return true;
            }
        }

        return false;
    }

    private static string Escape(string s) => Uri.EscapeDataString(s.Length > 64 ? s[..64] : s);

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
