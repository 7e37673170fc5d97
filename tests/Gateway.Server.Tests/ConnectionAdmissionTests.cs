using System.Globalization;
using System.Net;
using System.Text;
using Gateway.Protocol;

namespace Gateway.Server.Tests;

/// <summary>Who may open a WebSocket: Origin allow-list, connection caps per source address and per user, and the
/// per-address handshake rate, all against a real gateway.</summary>
public sealed class ConnectionAdmissionTests
{
    // 127.0.0.0/8 is loopback on Linux: a socket bound to 127.0.0.2 reaches the gateway on 127.0.0.1 from another address.
    private static readonly ConnectSettings OtherAddress = new(LocalAddress: IPAddress.Parse("127.0.0.2"));

    [Fact]
    public async Task Origin_allow_list_admits_listed_origins_and_native_clients_only()
    {
        await using var gw = await TestGateway.StartAsync(null, "--Gateway:AllowedOrigins:0=https://app.example");

        await using (var browser = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"), new ConnectSettings(Origin: "https://app.example")))
        {
            Assert.Equal("alice", browser.Hello.UserId);
        }

        var (status, _) = await WsClient.ConnectRefusedAsync(gw.WebSocketUri, gw.Token("alice"), new ConnectSettings(Origin: "https://evil.example"));
        Assert.Equal(403, status);

        // Native apps send no Origin header at all.
        await using var native = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
        Assert.Equal("alice", native.Hello.UserId);
    }

    [Fact]
    public async Task Connections_per_address_are_capped_before_the_upgrade_is_read_and_freed_on_disconnect()
    {
        await using var gw = await TestGateway.StartAsync(null, "--Gateway:MaxConnectionsPerIp=2");
        var alice = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
        await using var bob = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("bob"));

        var (status, retryAfter) = await WsClient.ConnectRefusedAsync(gw.WebSocketUri, gw.Token("carol"));
        Assert.Equal(429, status);
        Assert.Null(retryAfter);

        // Refused before a byte of the request was read: a client that sends nothing still gets the answer.
        var endPoint = IPEndPoint.Parse(gw.WebSocketUri.Authority);
        await using (var raw = await RawWebSocketClient.ConnectAsync(endPoint))
        {
            var response = await raw.ReadHttpResponseAsync();
            Assert.Equal(429, response.StatusCode);
            Assert.Equal("close", response.Header("Connection"));
            Assert.Contains("too many connections", response.Body, StringComparison.Ordinal);
        }

        // Another source address is not affected.
        await using (var elsewhere = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("carol"), OtherAddress))
        {
            Assert.Equal("carol", elsewhere.Hello.UserId);
        }

        // Alice leaves: her slot comes back once the server has seen the connection end.
        await alice.DisposeAsync();
        await using var carol = await WsClient.ConnectEventuallyAsync(gw.WebSocketUri, gw.Token("carol"));
        Assert.Equal("carol", carol.Hello.UserId);
    }

    [Fact]
    public async Task Connections_per_user_are_capped_after_authentication_across_addresses()
    {
        await using var gw = await TestGateway.StartAsync(null, "--Gateway:MaxConnectionsPerUser=2");
        await gw.CreateChatAsync("cap", "alice");
        var first = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
        await using var second = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));

        Assert.Equal(429, (await WsClient.ConnectRefusedAsync(gw.WebSocketUri, gw.Token("alice"))).Status);
        Assert.Equal(429, (await WsClient.ConnectRefusedAsync(gw.WebSocketUri, gw.Token("alice"), OtherAddress)).Status);

        // The same user id in another tenant is another user; other users are unaffected.
        await using (var otherTenant = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice", tenantId: "t2")))
        await using (var bob = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("bob")))
        {
            Assert.Equal(("t2", "bob"), (otherTenant.Hello.TenantId, bob.Hello.UserId));
        }

        // Refused handshakes held no slot; a closed connection gives its slot back.
        await first.DisposeAsync();
        await using var third = await WsClient.ConnectEventuallyAsync(gw.WebSocketUri, gw.Token("alice"), OtherAddress);
        await third.SendTextAsync("cap", "hello");
        Assert.Equal(1UL, (await third.ReceiveAsync<SendAckFrame>()).Seq);
    }

    [Fact]
    public async Task Handshakes_per_address_are_rate_limited_with_retry_after()
    {
        // Burst 3, then one attempt per 10 s: the fourth attempt within the test is refused.
        await using var gw = await TestGateway.StartAsync(null, "--Gateway:HandshakesPerSecondPerIp=0.1", "--Gateway:HandshakeBurstPerIp=3");

        // Every attempt costs a token, accepted or not (this one fails authentication).
        Assert.Equal(401, (await WsClient.ConnectRefusedAsync(gw.WebSocketUri, token: null)).Status);
        for (var i = 0; i < 2; i++)
        {
            await using var ok = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
        }

        var (status, retryAfter) = await WsClient.ConnectRefusedAsync(gw.WebSocketUri, gw.Token("alice"));
        Assert.Equal(429, status);
        Assert.NotNull(retryAfter);
        Assert.InRange(int.Parse(retryAfter, CultureInfo.InvariantCulture), 1, 10);

        // The same answer on the wire, before any request bytes: status line, Retry-After, Connection: close.
        var endPoint = IPEndPoint.Parse(gw.WebSocketUri.Authority);
        await using (var raw = await RawWebSocketClient.ConnectAsync(endPoint))
        {
            await raw.SendRawAsync(Encoding.ASCII.GetBytes(RawWebSocketClient.BuildUpgradeRequest(ProtocolConstants.DefaultPath, ProtocolConstants.SubProtocol)));
            var response = await raw.ReadHttpResponseAsync();
            Assert.Equal("HTTP/1.1 429 Too Many Requests", response.StatusLine);
            Assert.NotNull(response.Header("Retry-After"));
            Assert.True(await raw.ReadUntilEofAsync(), "the server closes a refused connection");
        }

        // Other addresses have their own bucket.
        await using var elsewhere = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"), OtherAddress);
        Assert.Equal("alice", elsewhere.Hello.UserId);
    }
}
