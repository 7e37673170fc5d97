using System.Text;

namespace Gateway.WebSockets.Internal;

/// <summary>Parses and validates the head of an upgrade request (RFC 6455 §4.2.1 over RFC 9112 syntax).</summary>
internal static class HandshakeParser
{
    /// <summary>
    /// Parses <paramref name="head"/> (request line + headers + blank line). Returns the request when the syntax is
    /// valid; <paramref name="status"/> is 0 when the request is also a valid RFC 6455 upgrade, otherwise the HTTP
    /// status to answer (400, 405, 426) with <paramref name="error"/> as the body.
    /// </summary>
    public static HandshakeRequest? Parse(byte[] head, out int status, out string? error)
    {
        // Latin-1 maps every byte to one char, so nothing is silently replaced; non-ASCII is rejected below.
        string text = Encoding.Latin1.GetString(head, 0, head.Length - 4);
        string[] lines = text.Split("\r\n");
        foreach (string line in lines)
        {
            foreach (char c in line)
            {
                if ((c < 0x20 && c != '\t') || c > 0x7E)
                {
                    return Fail(400, "Malformed request: bad character.", out status, out error);
                }
            }
        }

        string[] requestLine = lines[0].Split(' ');
        if (requestLine.Length != 3 || !IsToken(requestLine[0]) || requestLine[1].Length == 0)
        {
            return Fail(400, "Malformed request line.", out status, out error);
        }

        string method = requestLine[0];
        string target = requestLine[1];
        string version = requestLine[2];
        if (target[0] != '/')
        {
            return Fail(400, "Malformed request target: origin-form expected.", out status, out error);
        }

        if (!version.StartsWith("HTTP/", StringComparison.Ordinal) || version.Length != 8)
        {
            return Fail(400, "Malformed request line: bad HTTP version.", out status, out error);
        }

        var headers = new List<KeyValuePair<string, string>>(lines.Length - 1);
        for (int i = 1; i < lines.Length; i++)
        {
            string line = lines[i];
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            // Obsolete line folding (a line starting with whitespace) and names with whitespace are errors (RFC 9112 §5).
            if (colon <= 0 || !IsToken(line.AsSpan(0, colon)))
            {
                return Fail(400, "Malformed header line.", out status, out error);
            }

            headers.Add(new(line[..colon], line[(colon + 1)..].Trim(' ', '\t')));
        }

        int q = target.IndexOf('?', StringComparison.Ordinal);
        var request = q < 0
            ? new HandshakeRequest(method, target, null, version, headers)
            : new HandshakeRequest(method, target[..q], target[(q + 1)..], version, headers);

        if (!string.Equals(method, "GET", StringComparison.Ordinal))
        {
            Fail(405, "Only GET can upgrade to a WebSocket.", out status, out error);
            return request;
        }

        if (!string.Equals(version, "HTTP/1.1", StringComparison.Ordinal))
        {
            Fail(400, "HTTP/1.1 is required.", out status, out error);
            return request;
        }

        // RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1 request message
        // that lacks a Host header field and to any request message that contains more than one Host header field
        // line". It counts field lines, not distinct values, so two identical Host lines are refused too: two lines
        // mean two parsers upstream may already disagree about which one counts (request smuggling, cache poisoning).
        int hostLines = request.CountHeaderLines("Host");
        if (hostLines > 1)
        {
            Fail(400, "More than one Host header.", out status, out error);
            return request;
        }

        if (hostLines == 0 || string.IsNullOrEmpty(request.Host))
        {
            Fail(400, "Missing Host header.", out status, out error);
            return request;
        }

        if (!request.HeaderContainsToken("Upgrade", "websocket"))
        {
            Fail(400, "Missing 'Upgrade: websocket'.", out status, out error);
            return request;
        }

        if (!request.HeaderContainsToken("Connection", "Upgrade"))
        {
            Fail(400, "Missing 'Connection: Upgrade'.", out status, out error);
            return request;
        }

        if (!string.Equals(request.SecWebSocketVersion, "13", StringComparison.Ordinal))
        {
            Fail(426, "Sec-WebSocket-Version 13 is required.", out status, out error);
            return request;
        }

        if (!IsValidKey(request.SecWebSocketKey))
        {
            Fail(400, "Sec-WebSocket-Key must be base64 of 16 bytes.", out status, out error);
            return request;
        }

        status = 0;
        error = null;
        return request;
    }

    /// <summary>RFC 6455 §4.1: the key is 16 random bytes, base64-encoded (always 24 characters).</summary>
    internal static bool IsValidKey(string? key)
    {
        if (key is null || key.Length != 24)
        {
            return false;
        }

        Span<byte> decoded = stackalloc byte[18]; // 24 base64 chars decode to at most 18 bytes
        return Convert.TryFromBase64String(key, decoded, out int written) && written == 16;
    }

    private static HandshakeRequest? Fail(int code, string message, out int status, out string? error)
    {
        status = code;
        error = message;
        return null;
    }

    /// <summary>RFC 9110 §5.6.2 token: one or more tchar.</summary>
    private static bool IsToken(ReadOnlySpan<char> s)
    {
        if (s.IsEmpty)
        {
            return false;
        }

        foreach (char c in s)
        {
            bool ok = char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c, StringComparison.Ordinal);
            if (!ok)
            {
                return false;
            }
        }

        return true;
    }
}
