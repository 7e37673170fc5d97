using System.Text;
using Gateway.Protocol;

namespace Gateway.Server.Tests;

/// <summary>A session's subscriptions as they grow from one to two and shrink back (the table switches between a single
/// field and a dictionary underneath): every live chat keeps delivering, an unsubscribed one stops.</summary>
public sealed class SubscriptionLifecycleTests
{
    private static async Task<ulong> SendAsync(WsClient sender, string chatId, string text)
    {
        var id = await sender.SendTextAsync(chatId, text);
        var ack = await sender.ReceiveAsync<SendAckFrame>();
        Assert.Equal(id, ack.RequestId);
        return ack.Seq;
    }

    private static async Task SubscribeAsync(WsClient client, string chatId, ulong afterSeq, params string[] expectedTexts)
    {
        var id = await client.SubscribeAsync(new ChatCursor(chatId, afterSeq));
        var subscribed = await client.ReceiveAsync<SubscribedFrame>();
        Assert.Equal(id, subscribed.RequestId);
        Assert.Equal(ErrorCode.None, Assert.Single(subscribed.Results).Code);
        foreach (var text in expectedTexts)
        {
            await ExpectMessageAsync(client, chatId, text);
        }

        Assert.Equal(chatId, (await client.ReceiveAsync<CaughtUpFrame>()).ChatId);
    }

    private static async Task UnsubscribeAsync(WsClient client, params string[] chatIds)
    {
        var id = 1000u + (uint)chatIds.Length;
        await client.SendFrameAsync(w => ClientFrameWriter.WriteUnsubscribe(w, id, chatIds));
        Assert.Equal(id, (await client.ReceiveAsync<UnsubscribedFrame>()).RequestId);
    }

    private static async Task ExpectMessageAsync(WsClient client, string chatId, string text)
    {
        var message = await client.ReceiveAsync<MessageFrame>();
        Assert.Equal(chatId, message.ChatId);
        Assert.Equal(text, Encoding.UTF8.GetString(message.Message.Content.Span));
    }

    [Fact]
    public async Task One_to_two_subscriptions_and_back_keeps_the_remaining_chat_live()
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateChatAsync("a", "alice", "bob");
        await gw.CreateChatAsync("b", "alice", "bob");
        await using var alice = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
        await using var bob = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("bob"));

        // One subscription.
        await SubscribeAsync(bob, "a", 0);
        await SendAsync(alice, "a", "a1");
        await ExpectMessageAsync(bob, "a", "a1");

        // Two.
        await SubscribeAsync(bob, "b", 0);
        await SendAsync(alice, "a", "a2");
        await ExpectMessageAsync(bob, "a", "a2");
        await SendAsync(alice, "b", "b1");
        await ExpectMessageAsync(bob, "b", "b1");

        // Back to one: b stays live, a is silent. Each send is acknowledged (committed and fanned out) before the next,
        // so had a's message been delivered it would come before b's.
        await UnsubscribeAsync(bob, "a");
        await SendAsync(alice, "a", "a3");
        await SendAsync(alice, "b", "b2");
        await ExpectMessageAsync(bob, "b", "b2");

        // Two again: a resumes from its cursor (a2 = seq 2) and replays what was missed.
        await SubscribeAsync(bob, "a", 2, "a3");
        await SendAsync(alice, "b", "b3");
        await ExpectMessageAsync(bob, "b", "b3");
        await SendAsync(alice, "a", "a4");
        await ExpectMessageAsync(bob, "a", "a4");

        // None, then one again.
        await UnsubscribeAsync(bob, "a", "b");
        await SendAsync(alice, "a", "a5");
        await SendAsync(alice, "b", "b4");
        await SubscribeAsync(bob, "b", 3, "b4"); // b3 = seq 3
        await SendAsync(alice, "a", "a6");
        await SendAsync(alice, "b", "b5");
        await ExpectMessageAsync(bob, "b", "b5");
    }

    [Fact]
    public async Task Resubscribing_the_only_chat_restarts_it_from_the_new_cursor()
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateChatAsync("a", "alice", "bob");
        await using var alice = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
        await using var bob = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("bob"));
        await SendAsync(alice, "a", "a1");
        await SendAsync(alice, "a", "a2");

        await SubscribeAsync(bob, "a", 2);
        await SubscribeAsync(bob, "a", 0, "a1", "a2");
        await SendAsync(alice, "a", "a3");
        await ExpectMessageAsync(bob, "a", "a3");
    }
}
