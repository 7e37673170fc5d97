using Gateway.Protocol;

namespace Gateway.Nats.Tests;

/// <summary>Reading helpers over <see cref="WsClient"/> for the distributed tests.</summary>
internal static class Frames
{
    /// <summary>Subscribes and returns the result of the one chat, skipping frames before the Subscribed reply.</summary>
    public static async Task<SubscribeResult> SubscribeAsync(this WsClient client, string chatId, ulong afterSeq = 0)
    {
        var id = await client.SubscribeAsync(new ChatCursor(chatId, afterSeq));
        while (true)
        {
            var frame = await client.ReceiveAsync(TimeSpan.FromSeconds(20)) ?? throw new InvalidOperationException("closed");
            if (frame is SubscribedFrame s && s.RequestId == id)
            {
                return s.Results[0];
            }
        }
    }

    /// <summary>Collects Message frames of a chat until <paramref name="lastSeq"/> arrived; fails on duplicates and
    /// out-of-order seqs as they happen. Other frames are passed to <paramref name="other"/> (or ignored).</summary>
    public static async Task<List<MessageFields>> ReceiveUntilAsync(this WsClient client, string chatId, ulong lastSeq, TimeSpan within, Action<ServerFrame>? other = null)
    {
        var received = new List<MessageFields>();
        var deadline = DateTime.UtcNow + within;
        while (received.Count == 0 || received[^1].Seq < lastSeq)
        {
            var left = deadline - DateTime.UtcNow;
            Assert.True(left > TimeSpan.Zero, $"timed out at seq {(received.Count == 0 ? 0 : received[^1].Seq)} of {lastSeq}");
            var frame = await client.ReceiveAsync(left) ?? throw new InvalidOperationException("closed");
            if (frame is MessageFrame m && m.ChatId == chatId)
            {
                if (received.Count > 0)
                {
                    Assert.True(m.Message.Seq > received[^1].Seq, $"seq {m.Message.Seq} after {received[^1].Seq}: duplicate or reordered");
                }

                received.Add(m.Message);
            }
            else
            {
                other?.Invoke(frame);
            }
        }

        return received;
    }

    /// <summary>Sends and waits for the SendAck (or Error) of that request.</summary>
    public static async Task<ServerFrame> SendAndAckAsync(this WsClient client, string chatId, string text, string? clientMessageId = null, Action<ServerFrame>? other = null)
    {
        var id = await client.SendTextAsync(chatId, text, clientMessageId);
        while (true)
        {
            var frame = await client.ReceiveAsync(TimeSpan.FromSeconds(30)) ?? throw new InvalidOperationException("closed");
            switch (frame)
            {
                case SendAckFrame a when a.RequestId == id:
                    return a;
                case ErrorFrame e when e.RequestId == id:
                    return e;
                default:
                    other?.Invoke(frame);
                    break;
            }
        }
    }

    /// <summary>Asserts a dense run 1..n (or from..n) with no repeats.</summary>
    public static void AssertDense(IEnumerable<ulong> seqs, ulong from, ulong to)
    {
        var list = seqs.ToList();
        Assert.Equal(Enumerable.Range((int)from, (int)(to - from + 1)).Select(i => (ulong)i), list);
    }
}
