using System.Buffers;
using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;

namespace PeerClients;

/// <summary>
/// Client of the nats-server peer over its WebSocket listener: the NATS text protocol (INFO, CONNECT, PING/PONG, SUB,
/// PUB, MSG, +OK/-ERR) carried in binary WebSocket messages, which the server treats as one byte stream (a protocol
/// item may span messages and one message may hold several). A room is a subject. Confirmations use NATS's own
/// idiom: a PING after CONNECT or SUB, answered by a PONG once the server has processed everything before it.
/// </summary>
public sealed class NatsWsLoadConnection : WebSocketLoadConnection
{
    private static ReadOnlySpan<byte> Crlf => "\r\n"u8;

    private readonly Lock _gate = new();
    private readonly Queue<TaskCompletionSource> _pendingPongs = new();
    private readonly ConcurrentDictionary<string, byte[]> _subjects = new(StringComparer.Ordinal);

    // Room by subscription id (sid - 1), so a delivery names its room without decoding the subject.
    private string[] _roomsBySid = [];
    private readonly Dictionary<string, Task> _subscriptions = new(StringComparer.Ordinal);
    private Exception? _closed;
    private string? _serverError;

    /// <inheritdoc />
    public override async Task ConnectAsync(Uri endpoint, string userId, string? token, IPEndPoint? localEndPoint, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        await OpenAsync(endpoint, localEndPoint, configure: null, ct).ConfigureAwait(false);

        var connect = new ArrayBufferWriter<byte>(256);
        connect.Write("CONNECT "u8);
        using (var json = new Utf8JsonWriter(connect))
        {
            json.WriteStartObject();
            json.WriteBoolean("verbose", false);
            json.WriteBoolean("pedantic", false);
            json.WriteBoolean("tls_required", false);
            json.WriteString("name", userId);
            json.WriteString("lang", "dotnet-peerclients");
            json.WriteString("version", "1.0.0");
            json.WriteNumber("protocol", 1);
            json.WriteBoolean("echo", true);
            json.WriteBoolean("headers", false);
            json.WriteBoolean("no_responders", false);
            if (token is not null)
            {
                json.WriteString("auth_token", token);
            }
            json.WriteEndObject();
        }
        connect.Write(Crlf);
        // The PONG to this PING says CONNECT was accepted (a rejected one gets -ERR and a close instead).
        await SendWithPingAsync(connect.WrittenMemory, ct).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override Task SubscribeAsync(string room, CancellationToken ct)
    {
        var subject = Subject(room);
        int sid;
        lock (_gate)
        {
            if (_closed is not null)
            {
                throw new InvalidOperationException("The connection is closed.", _closed);
            }
            // One subscription per room: a second SUB on the same subject would deliver every message twice.
            if (_subscriptions.TryGetValue(room, out var existing))
            {
                return existing.WaitAsync(ct);
            }
            _roomsBySid = [.. _roomsBySid, room];
            sid = _roomsBySid.Length;
        }

        // "SUB <subject> <sid>\r\n"; 11 digits hold any int.
        var line = new byte[4 + subject.Length + 1 + 11 + 2];
        "SUB "u8.CopyTo(line);
        subject.CopyTo(line.AsSpan(4));
        var at = 4 + subject.Length;
        line[at++] = (byte)' ';
        Utf8Formatter.TryFormat(sid, line.AsSpan(at), out var digits);
        at += digits;
        Crlf.CopyTo(line.AsSpan(at));
        var task = SendWithPingAsync(line.AsMemory(0, at + 2), CancellationToken.None);
        lock (_gate)
        {
            _subscriptions[room] = task;
        }
        return task.WaitAsync(ct);
    }

    /// <inheritdoc />
    public override ValueTask PublishAsync(string room, ReadOnlyMemory<byte> payload, CancellationToken ct)
    {
        var subject = _subjects.GetOrAdd(room, Subject);
        // "PUB <subject> <size>\r\n<payload>\r\n"; 11 digits hold any int.
        var size = 4 + subject.Length + 1 + 11 + 2 + payload.Length + 2;
        return SendAsync(size, (subject, payload), static (destination, state) =>
        {
            "PUB "u8.CopyTo(destination);
            state.subject.CopyTo(destination[4..]);
            var at = 4 + state.subject.Length;
            destination[at++] = (byte)' ';
            Utf8Formatter.TryFormat(state.payload.Length, destination[at..], out var digits);
            at += digits;
            Crlf.CopyTo(destination[at..]);
            at += 2;
            state.payload.Span.CopyTo(destination[at..]);
            at += state.payload.Length;
            Crlf.CopyTo(destination[at..]);
            return at + 2;
        }, ct);
    }

    /// <inheritdoc />
    protected override int Process(ReadOnlySpan<byte> buffered, bool endOfMessage)
    {
        var consumed = 0;
        while (true)
        {
            var rest = buffered[consumed..];
            var lineEnd = rest.IndexOf(Crlf);
            if (lineEnd < 0)
            {
                return consumed;
            }
            var line = rest[..lineEnd];
            if (line.StartsWith("MSG "u8))
            {
                // MSG <subject> <sid> [reply-to] <size>: the size is the last token, the sid the second.
                var args = line[4..];
                var lastSpace = args.LastIndexOf((byte)' ');
                if (lastSpace < 0 || !Utf8Parser.TryParse(args[(lastSpace + 1)..], out int size, out _) || size < 0)
                {
                    throw new InvalidDataException("A MSG line without a payload size.");
                }
                var itemLength = lineEnd + 2 + size + 2;
                if (rest.Length < itemLength)
                {
                    return consumed;
                }
                var afterSubject = args[(args.IndexOf((byte)' ') + 1)..];
                var sidEnd = afterSubject.IndexOf((byte)' ');
                if (!Utf8Parser.TryParse(afterSubject[..sidEnd], out int sid, out _) || sid < 1 || sid > _roomsBySid.Length)
                {
                    throw new InvalidDataException("A MSG line for an unknown subscription.");
                }
                OnMessage?.Invoke(_roomsBySid[sid - 1], 0, rest.Slice(lineEnd + 2, size));
                consumed += itemLength;
                continue;
            }

            if (line.SequenceEqual("PING"u8))
            {
                // The server's keep-alive; answering is part of the protocol.
                _ = SendPongAsync();
            }
            else if (line.SequenceEqual("PONG"u8))
            {
                TaskCompletionSource? pong;
                lock (_gate)
                {
                    _pendingPongs.TryDequeue(out pong);
                }
                pong?.TrySetResult();
            }
            else if (line.StartsWith("-ERR"u8))
            {
                // Most errors are followed by a close; keep the text so that close reports why.
                _serverError = "nats-server: " + Encoding.UTF8.GetString(line[4..]).Trim();
                ReportError(_serverError);
            }
            // INFO and +OK carry nothing this client needs (verbose is off, and there is no cluster to learn about).
            consumed += lineEnd + 2;
        }
    }

    /// <inheritdoc />
    protected override void OnClosed(Exception error)
    {
        if (_serverError is { } serverError)
        {
            error = new InvalidOperationException(serverError, error);
        }
        TaskCompletionSource[] pending;
        lock (_gate)
        {
            _closed = error;
            pending = [.. _pendingPongs];
            _pendingPongs.Clear();
        }
        foreach (var pong in pending)
        {
            pong.TrySetException(error);
        }
    }

    private async Task SendWithPingAsync(ReadOnlyMemory<byte> command, CancellationToken ct)
    {
        var pong = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // The PONG is queued inside the send lock, so the order of the queue is the order of the PINGs on the wire.
        await SendAsync(command.Length + 6, (this, command, pong), static (destination, state) =>
        {
            lock (state.Item1._gate)
            {
                if (state.Item1._closed is { } closed)
                {
                    throw new InvalidOperationException("The connection is closed.", closed);
                }
                state.Item1._pendingPongs.Enqueue(state.pong);
            }
            state.command.Span.CopyTo(destination);
            "PING\r\n"u8.CopyTo(destination[state.command.Length..]);
            return state.command.Length + 6;
        }, ct).ConfigureAwait(false);
        await pong.Task.WaitAsync(ct).ConfigureAwait(false);
    }

    private async Task SendPongAsync()
    {
        try
        {
            await SendAsync(6, 0, static (destination, _) =>
            {
                "PONG\r\n"u8.CopyTo(destination);
                return 6;
            }, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // The receive loop sees the broken connection and reports it.
        }
    }

    private static byte[] Subject(string room)
    {
        ArgumentException.ThrowIfNullOrEmpty(room);
        // A subject is one protocol token: no whitespace, and no wildcards where a PUB must name one subject.
        if (room.AsSpan().IndexOfAny(" \t\r\n*>") >= 0)
        {
            throw new ArgumentException("A room name used as a NATS subject has no whitespace, '*' or '>'.", nameof(room));
        }
        return Encoding.UTF8.GetBytes(room);
    }
}
