using Gateway.Protocol;
using Gateway.TestUtilities;
using static Gateway.Client.Tests.TestHelpers;

namespace Gateway.Client.Tests;

public sealed class TokenRefreshTests
{
    private static ChatClient NewClientWithProvider(ScriptedServer server, Func<int> next) => NewClient(server, o =>
    {
        o.Token = null;
        o.TokenProvider = _ => ValueTask.FromResult("tok-" + next());
    });

    [Fact]
    public async Task Token_expiring_asks_the_provider_and_refreshes_in_place()
    {
        await using var server = await ScriptedServer.StartAsync();
        server.TokenExpiresAt = 1_800_000_060_000;
        var tokens = 0;
        await using var client = NewClientWithProvider(server, () => Interlocked.Increment(ref tokens));
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();
        Assert.Equal(1_800_000_060_000, client.TokenExpiresAt);

        await conn.SendAsync(new TokenExpiringFrame(1_800_000_060_000, 1_800_000_090_000));
        var refresh = await conn.ReceiveAsync();
        Assert.Equal((FrameType.RefreshToken, "tok-2"), (refresh.Type, refresh.Token));
        await conn.SendAsync(new TokenRefreshedFrame(refresh.RequestId, 1_800_003_600_000));

        await Poll.UntilAsync(() => client.TokenRefreshes == 1, "the refresh answered");
        Assert.Equal(1_800_003_600_000, client.TokenExpiresAt);
        Assert.Equal(0, client.TokenRefreshFailures);
        Assert.Equal(0, client.Reconnects);
        Assert.Equal(1, server.AcceptedCount);

        // The connection lives on: the next token's notice refreshes again.
        await conn.SendAsync(new TokenExpiringFrame(1_800_003_600_000, 1_800_003_630_000));
        var again = await conn.ReceiveAsync();
        Assert.Equal((FrameType.RefreshToken, "tok-3"), (again.Type, again.Token));
        await conn.SendAsync(new TokenRefreshedFrame(again.RequestId, 1_800_007_200_000));
        await Poll.UntilAsync(() => client.TokenRefreshes == 2, "the second refresh answered");
        Assert.Equal(1_800_007_200_000, client.TokenExpiresAt);
    }

    [Fact]
    public async Task A_refused_refresh_is_counted_and_the_4001_close_reconnects_with_a_fresh_token()
    {
        await using var server = await ScriptedServer.StartAsync();
        var tokens = 0;
        await using var client = NewClientWithProvider(server, () => Interlocked.Increment(ref tokens));
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn1 = await server.AcceptAsync();
        var expiresAt = client.TokenExpiresAt;

        await conn1.SendAsync(new TokenExpiringFrame(1_800_000_060_000, 1_800_000_090_000));
        var refresh = await conn1.ReceiveAsync();
        Assert.Equal((FrameType.RefreshToken, "tok-2"), (refresh.Type, refresh.Token));
        await conn1.SendAsync(new ErrorFrame(refresh.RequestId, ErrorCode.Unauthenticated, "token names another user"));
        await Poll.UntilAsync(() => client.TokenRefreshFailures == 1, "the refusal counted");
        Assert.Equal(expiresAt, client.TokenExpiresAt); // the old token still rules the connection
        Assert.Equal(ChatConnectionState.Connected, client.State);

        await conn1.CloseAsync(CloseCodes.TokenExpired, "token expired");
        var conn2 = await server.AcceptAsync();
        Assert.Equal("Bearer tok-3", conn2.Authorization);
        await Poll.UntilAsync(() => client.Reconnects == 1 && client.State == ChatConnectionState.Connected, "reconnected");
        Assert.Equal(0, client.TokenRefreshes);
    }

    [Fact]
    public async Task A_provider_failure_during_refresh_is_counted_not_fatal()
    {
        await using var server = await ScriptedServer.StartAsync();
        var calls = 0;
        await using var client = NewClient(server, o =>
        {
            o.Token = null;
            o.TokenProvider = _ => Interlocked.Increment(ref calls) == 1
                ? ValueTask.FromResult("tok-1")
                : ValueTask.FromException<string>(new InvalidOperationException("identity provider down"));
        });
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();

        await conn.SendAsync(new TokenExpiringFrame(1_800_000_060_000, 1_800_000_090_000));
        await Poll.UntilAsync(() => client.TokenRefreshFailures == 1, "the failed refresh counted");

        // Nothing was written for it: the next frame the server sees is the application's request.
        var paging = client.GetHistoryAsync("c1", 0, 1);
        var history = await conn.ReceiveAsync();
        Assert.Equal(FrameType.History, history.Type);
        await conn.SendAsync(new HistoryPageFrame(history.RequestId, "c1", [], HasMore: false));
        await paging.WaitAsync(TestTimeout);
        Assert.Equal(ChatConnectionState.Connected, client.State);
    }

    [Fact]
    public async Task With_a_fixed_token_expiring_is_ignored_and_the_4001_close_ends_the_client()
    {
        await using var server = await ScriptedServer.StartAsync();
        await using var client = NewClient(server);
        await client.ConnectAsync().WaitAsync(TestTimeout);
        var conn = await server.AcceptAsync();
        await SubscribeOkAsync(client, conn, new ChatCursor("c1", 0));

        // The typing notice behind it proves the client has handled the TokenExpiring frame.
        await conn.SendAsync(new TokenExpiringFrame(1_800_000_060_000, 1_800_000_090_000), new UserTypingFrame("c1", "bob"));
        Assert.IsType<UserTypingFrame>(await client.NextEventAsync());
        var paging = client.GetHistoryAsync("c1", 0, 1);
        var history = await conn.ReceiveAsync();
        Assert.Equal(FrameType.History, history.Type); // no RefreshToken went out
        await conn.SendAsync(new HistoryPageFrame(history.RequestId, "c1", [], HasMore: false));
        await paging.WaitAsync(TestTimeout);

        await conn.CloseAsync(CloseCodes.TokenExpired, "token expired");
        var e = await Assert.ThrowsAsync<ChatClientException>(() => client.Events.Completion.WaitAsync(TestTimeout));
        Assert.Equal(CloseCodes.TokenExpired, e.CloseStatus);
        Assert.Equal(ChatConnectionState.Closed, client.State);
        Assert.Equal(1, server.AcceptedCount);
    }
}
