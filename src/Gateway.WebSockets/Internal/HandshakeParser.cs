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
        string? authority = null;
        if (target[0] != '/')
        {
            // RFC 9112 §3.2.2: a server MUST accept the absolute-form in requests (a client sends it to proxies, and
            // future versions may send it to everyone); routing then uses its path as if it had come in origin-form.
            if (!TrySplitAbsoluteForm(target, out authority, out string originForm))
            {
                return Fail(400, "Malformed request target: origin-form or absolute-form expected.", out status, out error);
            }

            target = originForm;
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
            ? new HandshakeRequest(method, target, null, version, headers, authority)
            : new HandshakeRequest(method, target[..q], target[(q + 1)..], version, headers, authority);

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
        // With an absolute-form target the header must still be there exactly once, though its value is then ignored
        // in favour of the target's authority (§3.2.2).
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

    /// <summary>
    /// Splits an absolute-form request target (RFC 9112 §3.2.2: <c>absolute-URI</c>, e.g. <c>http://host:80/v1/ws?x=1</c>)
    /// into its authority and the origin-form the rest would have been (<c>/v1/ws?x=1</c>; an empty path is "/", as
    /// in RFC 9112 §3.2.1). Only "scheme://authority" URIs with a non-empty authority are taken: the authority stands in
    /// for Host. The scheme (http, ws, ... in practice) is not checked: like Host, it is the decide callback's to judge.
    /// Userinfo is refused (RFC 9110 §4.2.4: recipients treat it as an error), and so is
    /// a fragment, which a request target cannot carry. No normalisation: the path stays byte for byte as sent, like
    /// an origin-form one.
    /// </summary>
    internal static bool TrySplitAbsoluteForm(string target, out string? authority, out string originForm)
    {
        authority = null;
        originForm = string.Empty;
        int schemeEnd = target.IndexOf("://", StringComparison.Ordinal);
        if (schemeEnd <= 0 || !IsScheme(target.AsSpan(0, schemeEnd)) || target.Contains('#', StringComparison.Ordinal))
        {
            return false;
        }

        int authorityStart = schemeEnd + 3;
        int authorityLength = target.AsSpan(authorityStart).IndexOfAny('/', '?');
        int authorityEnd = authorityLength < 0 ? target.Length : authorityStart + authorityLength;

        string candidate = target[authorityStart..authorityEnd];
        if (candidate.Length == 0 || candidate.Contains('@', StringComparison.Ordinal))
        {
            return false;
        }

        authority = candidate;
        originForm = authorityEnd == target.Length || target[authorityEnd] == '?'
            ? "/" + target[authorityEnd..]
            : target[authorityEnd..];
        return true;
    }

    /// <summary>RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).</summary>
    private static bool IsScheme(ReadOnlySpan<char> s)
    {
        if (!char.IsAsciiLetter(s[0]))
        {
            return false;
        }

        foreach (char c in s)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('+' or '-' or '.'))
            {
                return false;
            }
        }

        return true;
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
