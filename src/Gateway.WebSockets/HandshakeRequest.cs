namespace Gateway.WebSockets;

/// <summary>
/// A parsed HTTP/1.1 upgrade request. Built once per connection, so it is an ordinary allocated object; header values
/// are kept as sent (with surrounding whitespace trimmed).
/// </summary>
public sealed class HandshakeRequest
{
    private readonly List<KeyValuePair<string, string>> _headers;

    internal HandshakeRequest(string method, string path, string? query, string httpVersion,
        List<KeyValuePair<string, string>> headers, string? targetAuthority = null)
    {
        Method = method;
        Path = path;
        Query = query;
        HttpVersion = httpVersion;
        _headers = headers;
        // RFC 9112 §3.2.2: with an absolute-form target the server ignores the Host header and uses the target's
        // authority instead (the header is still in Headers, as sent).
        Host = targetAuthority ?? GetHeader("Host");
        SecWebSocketKey = GetHeader("Sec-WebSocket-Key");
        SecWebSocketVersion = GetHeader("Sec-WebSocket-Version");
        Authorization = GetHeader("Authorization");
        Origin = GetHeader("Origin");
        SubProtocols = SplitAll("Sec-WebSocket-Protocol");
    }

    /// <summary>The request method (e.g. <c>GET</c>).</summary>
    public string Method { get; }

    /// <summary>The request path without the query (e.g. <c>/v1/ws</c>).</summary>
    public string Path { get; }

    /// <summary>The query without the leading '?', or null when the target had none.</summary>
    public string? Query { get; }

    /// <summary>The protocol token of the request line (always <c>HTTP/1.1</c> once validated).</summary>
    public string HttpVersion { get; }

    /// <summary>The Host header; for an absolute-form request target (<c>GET http://host/path HTTP/1.1</c>) the target's
    /// authority, which takes its place (RFC 9112 §3.2.2).</summary>
    public string? Host { get; }

    /// <summary>The Sec-WebSocket-Key header.</summary>
    public string? SecWebSocketKey { get; }

    /// <summary>The Sec-WebSocket-Version header.</summary>
    public string? SecWebSocketVersion { get; }

    /// <summary>The Authorization header.</summary>
    public string? Authorization { get; }

    /// <summary>The Origin header.</summary>
    public string? Origin { get; }

    /// <summary>Every Sec-WebSocket-Protocol entry, from all such headers, split on ',' and trimmed, in order.</summary>
    public IReadOnlyList<string> SubProtocols { get; }

    /// <summary>All headers in arrival order (names as sent).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Headers => _headers;

    /// <summary>
    /// The value of a header, matched case-insensitively. When the header appears several times the values are joined
    /// with ", " (RFC 9110 §5.3). Null when absent.
    /// </summary>
    /// <param name="name">The header name.</param>
    public string? GetHeader(string name)
    {
        string? value = null;
        foreach (var (key, v) in _headers)
        {
            if (string.Equals(key, name, StringComparison.OrdinalIgnoreCase))
            {
                value = value is null ? v : value + ", " + v;
            }
        }

        return value;
    }

    /// <summary>How many field lines named <paramref name="name"/> (case-insensitive) the request carried.</summary>
    internal int CountHeaderLines(string name)
    {
        int count = 0;
        foreach (var (key, _) in _headers)
        {
            if (string.Equals(key, name, StringComparison.OrdinalIgnoreCase))
            {
                count++;
            }
        }

        return count;
    }

    /// <summary>Whether a comma-separated header contains <paramref name="token"/> (case-insensitive), in any of its occurrences.</summary>
    internal bool HeaderContainsToken(string name, string token)
    {
        foreach (var (key, v) in _headers)
        {
            if (!string.Equals(key, name, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            foreach (var part in v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                if (string.Equals(part, token, StringComparison.OrdinalIgnoreCase))
                {
                    return true;
                }
            }
        }

        return false;
    }

    private string[] SplitAll(string name)
    {
        List<string>? all = null;
        foreach (var (key, v) in _headers)
        {
            if (string.Equals(key, name, StringComparison.OrdinalIgnoreCase))
            {
                all ??= [];
                all.AddRange(v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
            }
        }

        return all is null ? [] : [.. all];
    }
}
