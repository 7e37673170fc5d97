using System.Collections.Concurrent;
using System.Net;
using System.Text;

namespace PeerClients;

/// <summary>
/// Client of the Node.js <c>ws</c> peer (<c>bench/peers/node-ws/server.js</c>). One binary WebSocket message per
/// envelope: <c>[op][roomLen][room UTF-8][payload]</c> with op 1 JOIN, 2 JOINED, 3 PUB, 4 MSG.
/// </summary>
public sealed class NodeWsLoadConnection : WebSocketLoadConnection
{
    private const byte OpJoin = 0x01;
    private const byte OpJoined = 0x02;
    private const byte OpPub = 0x03;
    private const byte OpMsg = 0x04;

    // The envelope stores the room's UTF-8 length in one byte.
    private const int MaxRoomBytes = 255;

    private readonly Lock _gate = new();
    private readonly Dictionary<string, TaskCompletionSource> _pendingJoins = new(StringComparer.Ordinal);

    // Joined rooms with their UTF-8 names, so a delivery finds its room string without decoding or allocating.
    private (string Name, byte[] Utf8)[] _rooms = [];
    private Exception? _closed;

    // Rooms published to without joining (a broadcast publisher need not be a member): encoded once each.
    private readonly ConcurrentDictionary<string, byte[]> _publishRooms = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public override Task ConnectAsync(Uri endpoint, string userId, string? token, IPEndPoint? localEndPoint, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        var uri = token is null ? endpoint : AppendQuery(endpoint, "access_token", token);
        return OpenAsync(uri, localEndPoint, configure: null, ct);
    }

    /// <inheritdoc />
    public override async Task SubscribeAsync(string room, CancellationToken ct)
    {
        var roomBytes = RoomBytes(room);
        var joined = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (_closed is not null)
            {
                throw new InvalidOperationException("The connection is closed.", _closed);
            }
            if (_pendingJoins.TryGetValue(room, out var pending))
            {
                joined = pending;
            }
            else
            {
                _pendingJoins.Add(room, joined);
                if (Array.FindIndex(_rooms, r => r.Name == room) < 0)
                {
                    _rooms = [.. _rooms, (room, roomBytes)];
                }
            }
        }
        await SendAsync(2 + roomBytes.Length, roomBytes, static (destination, room) =>
        {
            destination[0] = OpJoin;
            destination[1] = (byte)room.Length;
            room.CopyTo(destination[2..]);
            return 2 + room.Length;
        }, ct).ConfigureAwait(false);
        await joined.Task.WaitAsync(ct).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override ValueTask PublishAsync(string room, ReadOnlyMemory<byte> payload, CancellationToken ct)
    {
        var roomBytes = FindRoom(room)?.Utf8 ?? _publishRooms.GetOrAdd(room, RoomBytes);
        return SendAsync(2 + roomBytes.Length + payload.Length, (roomBytes, payload), static (destination, state) =>
        {
            destination[0] = OpPub;
            destination[1] = (byte)state.roomBytes.Length;
            state.roomBytes.CopyTo(destination[2..]);
            state.payload.Span.CopyTo(destination[(2 + state.roomBytes.Length)..]);
            return 2 + state.roomBytes.Length + state.payload.Length;
        }, ct);
    }

    /// <inheritdoc />
    protected override int Process(ReadOnlySpan<byte> buffered, bool endOfMessage)
    {
        if (!endOfMessage)
        {
            return 0;
        }
        if (buffered.Length < 2 || buffered.Length < 2 + buffered[1])
        {
            throw new InvalidDataException($"A message of {buffered.Length} bytes is shorter than its envelope.");
        }
        var roomUtf8 = buffered.Slice(2, buffered[1]);
        var room = RoomName(roomUtf8);
        switch (buffered[0])
        {
            case OpMsg:
                OnMessage?.Invoke(room, 0, buffered[(2 + roomUtf8.Length)..]);
                break;
            case OpJoined:
                TaskCompletionSource? joined;
                lock (_gate)
                {
                    _pendingJoins.Remove(room, out joined);
                }
                joined?.TrySetResult();
                break;
            default:
                throw new InvalidDataException($"Unknown op 0x{buffered[0]:x2} from the server.");
        }
        return buffered.Length;
    }

    /// <inheritdoc />
    protected override void OnClosed(Exception error)
    {
        TaskCompletionSource[] pending;
        lock (_gate)
        {
            _closed = error;
            pending = [.. _pendingJoins.Values];
            _pendingJoins.Clear();
        }
        foreach (var joined in pending)
        {
            joined.TrySetException(error);
        }
    }

    private (string Name, byte[] Utf8)? FindRoom(string room)
    {
        foreach (var r in _rooms)
        {
            if (r.Name == room)
            {
                return r;
            }
        }
        return null;
    }

    private string RoomName(ReadOnlySpan<byte> utf8)
    {
        foreach (var r in _rooms)
        {
            if (utf8.SequenceEqual(r.Utf8))
            {
                return r.Name;
            }
        }
        return Encoding.UTF8.GetString(utf8);
    }

    private static byte[] RoomBytes(string room)
    {
        ArgumentException.ThrowIfNullOrEmpty(room);
        var bytes = Encoding.UTF8.GetBytes(room);
        if (bytes.Length > MaxRoomBytes)
        {
            throw new ArgumentException($"A room name is at most {MaxRoomBytes} UTF-8 bytes.", nameof(room));
        }
        return bytes;
    }

    internal static Uri AppendQuery(Uri uri, string name, string value)
    {
        var builder = new UriBuilder(uri);
        var pair = name + "=" + Uri.EscapeDataString(value);
        builder.Query = string.IsNullOrEmpty(builder.Query) ? pair : builder.Query.TrimStart('?') + "&" + pair;
        return builder.Uri;
    }
}
