using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using Gateway.Protocol;
using Gateway.Server.Auth;
using Microsoft.IdentityModel.Tokens;

namespace Gateway.Server.Tests;

/// <summary>Acknowledged means durable: kill -9 the real process and start it again on the same data.</summary>
public sealed class DurabilityTests
{
    /// <summary>The burst below is far over the default per-user send rate, which is not under test here.</summary>
    private static readonly string[] Unlimited = ["--Gateway:SendsPerSecond=1000000", "--Gateway:SendBurst=1000000"];

    [Fact]
    public async Task Kill9_loses_no_acknowledged_message_and_idempotency_survives()
    {
        var dir = TestGateway.NewTempDirectory();
        try
        {
            var acked = new Dictionary<ulong, (string MessageId, string Text, string Cmid)>();
            string token;
            await using (var first = await GatewayProcess.StartAsync(dir, Unlimited))
            {
                await CreateChatAsync(first.HttpUri, dir, "durable", "alice");
                token = Token(dir, "alice");
                await using var alice = await WsClient.ConnectAsync(first.WebSocketUri, token);

                // 30 sends one at a time, each acknowledged before the next.
                for (var i = 0; i < 30; i++)
                {
                    await alice.SendTextAsync("durable", $"msg {i}", $"c{i}");
                    var ack = await alice.ReceiveAsync<SendAckFrame>();
                    acked[ack.Seq] = (ack.MessageId, $"msg {i}", $"c{i}");
                }

                // Then a pipelined burst, killed while acks are still arriving: whatever was acked must survive.
                var byRequest = new Dictionary<uint, int>();
                for (var i = 30; i < 230; i++)
                {
                    byRequest[await alice.SendTextAsync("durable", $"msg {i}", $"c{i}")] = i;
                }

                for (var i = 0; i < 40; i++)
                {
                    var ack = await alice.ReceiveAsync<SendAckFrame>();
                    var n = byRequest[ack.RequestId];
                    acked[ack.Seq] = (ack.MessageId, $"msg {n}", $"c{n}");
                }

                await first.KillAsync();
            }

            await using var second = await GatewayProcess.StartAsync(dir, Unlimited);
            await using var again = await WsClient.ConnectAsync(second.WebSocketUri, token);
            await again.SubscribeAsync(new ChatCursor("durable", 0));
            var head = Assert.Single((await again.ReceiveAsync<SubscribedFrame>()).Results).HeadSeq;
            Assert.True(head >= (ulong)acked.Count, $"head {head} < {acked.Count} acknowledged");

            var replay = new List<MessageFields>();
            while (true)
            {
                var frame = await again.ReceiveAsync();
                if (frame is CaughtUpFrame caughtUp)
                {
                    Assert.Equal(head, caughtUp.Seq);
                    break;
                }

                replay.Add(Assert.IsType<MessageFrame>(frame).Message);
            }

            // Dense 1..head, and every acknowledged message is there with its id.
            Assert.Equal(Enumerable.Range(1, (int)head).Select(i => (ulong)i), replay.Select(m => m.Seq));
            foreach (var (seq, (messageId, text, _)) in acked)
            {
                var m = replay[(int)seq - 1];
                Assert.Equal(messageId, m.MessageId);
                Assert.Equal(text, Encoding.UTF8.GetString(m.Content.Span));
            }

            // Idempotency survived the crash: a retry of c5 returns the original.
            var original = acked.Single(a => a.Value.Cmid == "c5");
            await again.SendTextAsync("durable", "msg 5", "c5");
            var retry = await again.ReceiveAsync<SendAckFrame>();
            Assert.True(retry.Duplicate);
            Assert.Equal(original.Key, retry.Seq);
            Assert.Equal(original.Value.MessageId, retry.MessageId);

            // And the sequence continues densely.
            await again.SendTextAsync("durable", "after restart", "fresh");
            var next = await ReceiveAckAsync(again);
            Assert.Equal(head + 1, next.Seq);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task<SendAckFrame> ReceiveAckAsync(WsClient client)
    {
        while (true)
        {
            var frame = await client.ReceiveAsync();
            if (frame is SendAckFrame ack)
            {
                return ack;
            }

            Assert.IsType<MessageFrame>(frame);
        }
    }

    private static string Token(string dataDirectory, string user)
    {
        var key = new SymmetricSecurityKey(Convert.FromBase64String(File.ReadAllText(Path.Combine(dataDirectory, "dev-signing.key")).Trim()));
        return JwtAuthenticator.Mint(key, "t1", user, TimeSpan.FromHours(1));
    }

    private static async Task CreateChatAsync(Uri http, string dataDirectory, string chatId, params string[] members)
    {
        using var client = new HttpClient { BaseAddress = http };
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/admin/tenants/t1/chats") { Content = JsonContent.Create(new { chatId, members }) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", File.ReadAllText(Path.Combine(dataDirectory, "admin.key")).Trim());
        using var response = await client.SendAsync(request);
        Assert.Equal(System.Net.HttpStatusCode.Created, response.StatusCode);
    }
}
