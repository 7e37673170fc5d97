using System.Text;
using Gateway.Client;
using Gateway.Protocol;

namespace Gateway.Server.Tests;

/// <summary>The .NET client library against the real gateway: chat, and resume across a server restart.</summary>
public sealed class ClientLibraryTests
{
    private static ChatClient NewClient(Uri endpoint, TestGateway gw, string user) => new(new ChatClientOptions
    {
        Endpoint = endpoint,
        Token = gw.Token(user),
        ReconnectDelayMin = TimeSpan.FromMilliseconds(50),
        ReconnectDelayMax = TimeSpan.FromMilliseconds(500),
        RequestTimeout = TimeSpan.FromSeconds(5),
    });

    private static async Task<List<MessageFields>> ReadMessagesAsync(ChatClient client, int count)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var messages = new List<MessageFields>();
        await foreach (var frame in client.ReadEventsAsync(cts.Token))
        {
            if (frame is MessageFrame m)
            {
                messages.Add(m.Message);
                if (messages.Count == count)
                {
                    break;
                }
            }
        }

        return messages;
    }

    [Fact]
    public async Task Two_clients_chat_through_the_library()
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateChatAsync("general", "alice", "bob");
        await using var alice = NewClient(gw.WebSocketUri, gw, "alice");
        await using var bob = NewClient(gw.WebSocketUri, gw, "bob");
        await alice.ConnectAsync();
        await bob.ConnectAsync();
        await bob.SubscribeAsync([new ChatCursor("general", 0)]);

        var acks = new List<SendAckFrame>();
        for (var i = 0; i < 5; i++)
        {
            acks.Add(await alice.SendTextAsync("general", $"hi {i}"));
        }

        var seen = await ReadMessagesAsync(bob, 5);
        Assert.Equal([1UL, 2, 3, 4, 5], seen.Select(m => m.Seq));
        Assert.Equal(acks.Select(a => a.MessageId), seen.Select(m => m.MessageId));
        Assert.Equal(5UL, bob.GetCursor("general"));
        Assert.Equal((0L, 0L), (bob.DuplicatesDropped, bob.GapsDetected));

        var page = await bob.GetHistoryAsync("general", 0, 3);
        Assert.Equal([5UL, 4, 3], page.Messages.Select(m => m.Seq));
    }

    [Fact]
    public async Task Clients_resume_across_a_server_restart_without_loss_or_duplicates()
    {
        var dir = TestGateway.NewTempDirectory();
        try
        {
            var first = await TestGateway.StartAsync(dir);
            var ws = first.WebSocketUri;
            var http = first.HttpUri;
            string[] samePorts = [$"--Gateway:WebSocketEndpoint={ws.Authority}", $"--Gateway:HttpEndpoint={http.Authority}"];
            await first.CreateChatAsync("general", "alice", "bob");

            await using var alice = NewClient(ws, first, "alice");
            await using var bob = NewClient(ws, first, "bob");
            await alice.ConnectAsync();
            await bob.ConnectAsync();
            await bob.SubscribeAsync([new ChatCursor("general", 0)]);
            for (var i = 0; i < 3; i++)
            {
                await alice.SendTextAsync("general", $"before {i}");
            }

            Assert.Equal([1UL, 2, 3], (await ReadMessagesAsync(bob, 3)).Select(m => m.Seq));

            // The server goes away; alice keeps sending. Her sends wait for the server to come back.
            await first.DisposeAsync();
            var whileDown = Enumerable.Range(0, 3).Select(i => alice.SendTextAsync("general", $"during {i}")).ToList();

            await using var second = await TestGateway.StartAsync(dir, samePorts);
            var acks = await Task.WhenAll(whileDown).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal([4UL, 5, 6], acks.Select(a => a.Seq).Order().ToArray());
            Assert.All(acks, a => Assert.False(a.Duplicate));
            await alice.SendTextAsync("general", "after");

            // Bob's client re-subscribed from its cursor: exactly 4..7, once each.
            var resumed = await ReadMessagesAsync(bob, 4);
            Assert.Equal([4UL, 5, 6, 7], resumed.Select(m => m.Seq));
            Assert.Equal("after", Encoding.UTF8.GetString(resumed[^1].Content.Span));
            Assert.Equal((0L, 0L), (bob.DuplicatesDropped, bob.GapsDetected));
            Assert.True(bob.Reconnects >= 1);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
