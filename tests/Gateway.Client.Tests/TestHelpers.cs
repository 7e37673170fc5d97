using System.Text;
using Gateway.Protocol;

namespace Gateway.Client.Tests;

internal static class TestHelpers
{
    public static readonly TimeSpan TestTimeout = ScriptedServer.Timeout;

    /// <summary>A client for <paramref name="server"/> with fast reconnects so tests stay short.</summary>
    public static ChatClient NewClient(ScriptedServer server, Action<ChatClientOptions>? configure = null)
    {
        var options = new ChatClientOptions
        {
            Endpoint = server.Endpoint,
            Token = "tok-1",
            ReconnectDelayMin = TimeSpan.FromMilliseconds(10),
            ReconnectDelayMax = TimeSpan.FromMilliseconds(50),
            RequestTimeout = TimeSpan.FromSeconds(5),
        };
        configure?.Invoke(options);
        return new ChatClient(options);
    }

    public static async Task<ServerFrame> NextEventAsync(this ChatClient client) =>
        await client.Events.ReadAsync().AsTask().WaitAsync(TestTimeout);

    public static async Task<MessageFrame> NextMessageAsync(this ChatClient client) =>
        Assert.IsType<MessageFrame>(await client.NextEventAsync());

    public static MessageFrame Msg(string chatId, ulong seq, string text = "") =>
        new(chatId, new MessageFields(seq, "m" + seq, "bob", 1_700_000_000_000 + (long)seq, "text/plain",
            Encoding.UTF8.GetBytes(text.Length > 0 ? text : "message " + seq), null));

    public static SubscribedFrame Ok(ReceivedFrame subscribe, ulong headSeq = 0) =>
        new(subscribe.RequestId, [.. subscribe.ChatIds.Select(c => new SubscribeResult(c, ErrorCode.None, headSeq))]);

    /// <summary>Subscribes with the client while the server answers OK; returns the server's view of the Subscribe.</summary>
    public static async Task<ReceivedFrame> SubscribeOkAsync(ChatClient client, ScriptedConnection conn, params ChatCursor[] cursors)
    {
        var subscribing = client.SubscribeAsync(cursors);
        var subscribe = await conn.ReceiveAsync(FrameType.Subscribe);
        await conn.SendAsync(Ok(subscribe));
        var answer = await subscribing.WaitAsync(TestTimeout);
        Assert.All(answer.Results, r => Assert.Equal(ErrorCode.None, r.Code));
        return subscribe;
    }
}
