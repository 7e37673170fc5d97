using System.Threading.Channels;
using Gateway.Tools.Common;

namespace PeerClients.Tests;

/// <summary>Collects what one client receives, and waits for it with a deadline.</summary>
public sealed class Deliveries
{
    private readonly Channel<(string Room, ulong Seq, byte[] Payload)> _received = Channel.CreateUnbounded<(string, ulong, byte[])>();
    private readonly List<(string Room, ulong Seq, byte[] Payload)> _seen = [];

    public Deliveries(ILoadConnection connection)
    {
        connection.OnMessage = (room, seq, payload) => _received.Writer.TryWrite((room, seq, payload.ToArray()));
        connection.OnError = error => Errors.Enqueue(error);
    }

    public System.Collections.Concurrent.ConcurrentQueue<string> Errors { get; } = new();

    /// <summary>Everything received so far (drains the channel without waiting).</summary>
    public IReadOnlyList<(string Room, ulong Seq, byte[] Payload)> Seen
    {
        get
        {
            while (_received.Reader.TryRead(out var item))
            {
                _seen.Add(item);
            }
            return _seen;
        }
    }

    /// <summary>Waits until <paramref name="count"/> messages for <paramref name="room"/> have arrived in all.</summary>
    public async Task<IReadOnlyList<byte[]>> ExpectCountAsync(string room, int count, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (Seen.Count(m => m.Room == room) < count)
            {
                _seen.Add(await _received.Reader.ReadAsync(cts.Token));
            }
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"{Seen.Count(m => m.Room == room)} of {count} messages for {room} within {timeout}; errors: {string.Join("; ", Errors)}");
        }
        return [.. _seen.Where(m => m.Room == room).Select(m => m.Payload)];
    }

    /// <summary>Waits until a message for <paramref name="room"/> with <paramref name="payload"/> has arrived.</summary>
    public async Task ExpectAsync(string room, byte[] payload, TimeSpan timeout)
    {
        if (Seen.Any(m => m.Room == room && m.Payload.AsSpan().SequenceEqual(payload)))
        {
            return;
        }
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                var item = await _received.Reader.ReadAsync(cts.Token);
                _seen.Add(item);
                if (item.Room == room && item.Payload.AsSpan().SequenceEqual(payload))
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"No message for {room} with the expected payload within {timeout}; got {_seen.Count} other(s); errors: {string.Join("; ", Errors)}");
        }
    }
}
