using System.Buffers;
using System.IO.Pipelines;
using System.Text.Unicode;

namespace Gateway.Server.Connections;

/// <summary>
/// Answers a connection with an HTTP error before its upgrade request has been read (rate limit, connection cap, drain),
/// so a refused client costs no parsing.
/// </summary>
internal static class EarlyRefusal
{
    /// <summary>Longest a refused connection is kept to swallow the request it is still sending (see <see cref="RefuseAsync"/>).</summary>
    internal static readonly TimeSpan LingerTimeout = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Writes <c>HTTP/1.1 {status}</c> with <c>Connection: close</c>, an optional <c>Retry-After</c> and a short text body,
    /// then reads and discards what the client sends until its request head ends, it closes, <paramref name="maxRequestBytes"/>
    /// arrived, or <see cref="LingerTimeout"/> passed. The discard matters: closing a TCP socket with unread bytes in its
    /// receive buffer sends a reset instead of a FIN, and a reset can destroy the response before the client reads it.
    /// </summary>
    /// <param name="transport">The raw connection (nothing read yet).</param>
    /// <param name="status">429 or 503.</param>
    /// <param name="reason">Text body; ASCII, a few dozen characters.</param>
    /// <param name="retryAfterSeconds">Value of <c>Retry-After</c>, or 0 to omit the header.</param>
    /// <param name="maxRequestBytes">Most bytes to discard (the handshake limit).</param>
    /// <param name="cancellationToken">The connection's lifetime.</param>
    public static async Task RefuseAsync(IDuplexPipe transport, int status, string reason, int retryAfterSeconds,
        int maxRequestBytes, CancellationToken cancellationToken)
    {
        Write(transport.Output, status, reason, retryAfterSeconds);
        await transport.Output.FlushAsync(cancellationToken).ConfigureAwait(false);

        using var linger = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        linger.CancelAfter(LingerTimeout);
        try
        {
            while (true)
            {
                // Consume nothing until the end: a terminator split across reads is still found, and the buffer stays
                // within maxRequestBytes because the loop stops there.
                var result = await transport.Input.ReadAsync(linger.Token).ConfigureAwait(false);
                var buffer = result.Buffer;
                if (EndsHead(buffer) || buffer.Length >= maxRequestBytes || result.IsCompleted || result.IsCanceled)
                {
                    transport.Input.AdvanceTo(buffer.End);
                    break;
                }

                transport.Input.AdvanceTo(buffer.Start, buffer.End);
            }
        }
        catch (OperationCanceledException)
        {
            // linger over or connection gone: close anyway
        }
    }

    /// <summary>Formats the response straight into the pipe's buffer: no string, no array.</summary>
    private static void Write(PipeWriter output, int status, string reason, int retryAfterSeconds)
    {
        // Status line + three fixed headers + Retry-After + body: under 256 bytes for reasons of a few dozen characters.
        var span = output.GetSpan(256 + reason.Length);
        string phrase = status == 429 ? "Too Many Requests" : status == 503 ? "Service Unavailable" : "Error";
        bool ok = retryAfterSeconds > 0
            ? Utf8.TryWrite(span, $"HTTP/1.1 {status} {phrase}\r\nConnection: close\r\nRetry-After: {retryAfterSeconds}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {reason.Length + 2}\r\n\r\n{reason}\r\n", out int written)
            : Utf8.TryWrite(span, $"HTTP/1.1 {status} {phrase}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {reason.Length + 2}\r\n\r\n{reason}\r\n", out written);
        if (!ok)
        {
            throw new InvalidOperationException("HTTP refusal did not fit its buffer.");
        }

        output.Advance(written);
    }

    /// <summary>Whether the bytes read so far contain the blank line that ends an HTTP head.</summary>
    private static bool EndsHead(in ReadOnlySequence<byte> buffer)
    {
        var reader = new SequenceReader<byte>(buffer);
        return reader.TryReadTo(out ReadOnlySequence<byte> _, "\r\n\r\n"u8, advancePastDelimiter: false);
    }
}
