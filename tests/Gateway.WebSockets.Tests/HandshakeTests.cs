using System.Text;
using Xunit;
using C = Gateway.TestUtilities.RawWebSocketClient;

namespace Gateway.WebSockets.Tests;

/// <summary>The opening handshake over a real socket.</summary>
public class HandshakeTests
{
    private static WebSocketOptions Options(int maxHandshakeBytes = 8192, double handshakeTimeoutSeconds = 10) => new()
    {
        MaxHandshakeBytes = maxHandshakeBytes,
        HandshakeTimeout = TimeSpan.FromSeconds(handshakeTimeoutSeconds),
        KeepAliveInterval = TimeSpan.Zero,
    };

    private static async Task<(C Client, Gateway.TestUtilities.RawHttpResponse Response)> SendAsync(WsTestServer server,
        string request)
    {
        var client = await C.ConnectAsync(server.EndPoint);
        await client.SendRawAsync(Encoding.ASCII.GetBytes(request));
        return (client, await client.ReadHttpResponseAsync());
    }

    [Fact]
    public async Task Accepts_with_the_rfc_accept_value_and_the_chosen_subprotocol()
    {
        await using var server = await WsTestServer.StartAsync(Options());
        var (client, response) = await SendAsync(server,
            C.BuildUpgradeRequest("/v1/ws?x=1", "other, chatgw.v1", extraHeaders: ["Authorization: Bearer abc", "Origin: https://a.example"]));
        await using var _ = client;
        Assert.Equal(101, response.StatusCode);
        Assert.Equal(C.ExpectedAccept(), response.Header("Sec-WebSocket-Accept"));
        Assert.Equal("chatgw.v1", response.Header("Sec-WebSocket-Protocol"));
        Assert.Equal("websocket", response.Header("Upgrade"), ignoreCase: true);

        var result = await server.State.WaitForHandshakeAsync();
        Assert.True(result.Accepted);
        Assert.Equal("chatgw.v1", result.SubProtocol);
        var request = result.Request!;
        Assert.Equal("GET", request.Method);
        Assert.Equal("/v1/ws", request.Path);
        Assert.Equal("x=1", request.Query);
        Assert.Equal("localhost", request.Host);
        Assert.Equal("Bearer abc", request.Authorization);
        Assert.Equal("https://a.example", request.Origin);
        Assert.Equal(["other", "chatgw.v1"], request.SubProtocols);
        Assert.Equal("13", request.GetHeader("SEC-WEBSOCKET-VERSION"));
    }

    [Theory]
    [InlineData("16030100a5010000a10303")] // the start of a TLS ClientHello on the plain port
    [InlineData("00ff13377f")]             // random binary
    [InlineData("204745542f")]             // " GET/": a request line cannot start with a space
    [InlineData("474554474554474554474554474554474554474554474554474554")] // "GET" × 9: a method longer than any there is
    public async Task Bytes_that_cannot_start_a_request_line_are_refused_at_once_not_at_the_handshake_timeout(string hex)
    {
        // A minute of handshake timeout: an answer within the test's 10 s read limit can only be the early refusal.
        await using var server = await WsTestServer.StartAsync(Options(handshakeTimeoutSeconds: 60));
        await using var client = await C.ConnectAsync(server.EndPoint);
        await client.SendRawAsync(Convert.FromHexString(hex));
        var response = await client.ReadHttpResponseAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(400, response.StatusCode);
        var result = await server.State.WaitForHandshakeAsync();
        Assert.False(result.Accepted);
        Assert.Equal(400, result.StatusCode);
    }

    [Fact]
    public async Task A_decision_that_has_to_wait_holds_the_answer_until_it_completes()
    {
        // E.g. a token naming a signing key the server is still fetching: nothing is written until the decision is made.
        var decided = new TaskCompletionSource<HandshakeDecision>(TaskCreationOptions.RunContinuationsAsynchronously);
        var asked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await WsTestServer.StartAsync(Options(), _ =>
        {
            asked.TrySetResult();
            return new ValueTask<HandshakeDecision>(decided.Task);
        });
        await using var client = await C.ConnectAsync(server.EndPoint);
        await client.SendRawAsync(Encoding.ASCII.GetBytes(C.BuildUpgradeRequest("/v1/ws", "chatgw.v1")));
        await asked.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var response = client.ReadHttpResponseAsync();
        Assert.False(server.State.Handshakes.TryPeek(out _));

        decided.SetResult(HandshakeDecision.Accept("chatgw.v1"));
        Assert.Equal(101, (await response).StatusCode);
        Assert.True((await server.State.WaitForHandshakeAsync()).Accepted);
    }

    [Fact]
    public async Task No_subprotocol_header_when_none_is_chosen()
    {
        await using var server = await WsTestServer.StartAsync(Options());
        var (client, response) = await SendAsync(server, C.BuildUpgradeRequest());
        await using var _ = client;
        Assert.Equal(101, response.StatusCode);
        Assert.Null(response.Header("Sec-WebSocket-Protocol"));
    }

    [Fact]
    public async Task Handshake_sent_one_byte_at_a_time_works()
    {
        await using var server = await WsTestServer.StartAsync(Options());
        await using var client = await C.ConnectAsync(server.EndPoint);
        await client.SendBytewiseAsync(Encoding.ASCII.GetBytes(C.BuildUpgradeRequest(subProtocol: "chatgw.v1")));
        var response = await client.ReadHttpResponseAsync();
        Assert.Equal(101, response.StatusCode);

        await client.SendFrameAsync(C.OpBinary, "after"u8);
        var echo = await client.ReadFrameAsync();
        Assert.Equal("after"u8.ToArray(), echo.Payload);
    }

    [Fact]
    public async Task Frames_sent_in_the_same_write_as_the_handshake_are_not_lost()
    {
        await using var server = await WsTestServer.StartAsync(Options());
        await using var client = await C.ConnectAsync(server.EndPoint);
        byte[] bytes = [.. Encoding.ASCII.GetBytes(C.BuildUpgradeRequest()),
            .. C.BuildFrame(C.OpBinary, "one"u8), .. C.BuildFrame(C.OpBinary, "two"u8)];
        await client.SendRawAsync(bytes);
        Assert.Equal(101, (await client.ReadHttpResponseAsync()).StatusCode);
        Assert.Equal("one"u8.ToArray(), (await client.ReadFrameAsync()).Payload);
        Assert.Equal("two"u8.ToArray(), (await client.ReadFrameAsync()).Payload);
    }

    [Fact]
    public async Task Stalled_handshake_is_dropped_after_the_timeout()
    {
        await using var server = await WsTestServer.StartAsync(Options(handshakeTimeoutSeconds: 0.3));
        await using var client = await C.ConnectAsync(server.EndPoint);
        string request = C.BuildUpgradeRequest();
        await client.SendRawAsync(Encoding.ASCII.GetBytes(request[..(request.Length / 2)]));

        // Dropped: the server closes without writing anything.
        Assert.True(await client.ReadUntilEofAsync(TimeSpan.FromSeconds(5)));
        var result = await server.State.WaitForHandshakeAsync();
        Assert.False(result.Accepted);
        Assert.Equal(408, result.StatusCode);
    }

    [Theory]
    [InlineData("12")]
    [InlineData("")]
    public async Task Wrong_or_missing_version_is_answered_426_with_the_supported_version(string version)
    {
        await using var server = await WsTestServer.StartAsync(Options());
        var (client, response) = await SendAsync(server, C.BuildUpgradeRequest(version: version));
        await using var _ = client;
        Assert.Equal(426, response.StatusCode);
        Assert.Equal("13", response.Header("Sec-WebSocket-Version"));
        Assert.Equal("close", response.Header("Connection"));
        Assert.True(await client.ReadUntilEofAsync());
    }

    [Theory]
    [InlineData("")]                          // missing
    [InlineData("c2hvcnQ=")]                  // base64 of 5 bytes
    [InlineData("!!!!!!!!!!!!!!!!!!!!!!!!")]  // 24 chars, not base64
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAA")] // base64 of 21 bytes
    public async Task Missing_or_bad_key_is_answered_400(string key)
    {
        await using var server = await WsTestServer.StartAsync(Options());
        var (client, response) = await SendAsync(server, C.BuildUpgradeRequest(key: key));
        await using var _ = client;
        Assert.Equal(400, response.StatusCode);
        Assert.Contains("Key", response.Body, StringComparison.Ordinal);
        Assert.True(await client.ReadUntilEofAsync());
    }

    [Theory]
    [InlineData("POST")]
    [InlineData("PUT")]
    public async Task Non_get_is_answered_405(string method)
    {
        await using var server = await WsTestServer.StartAsync(Options());
        var (client, response) = await SendAsync(server, C.BuildUpgradeRequest(method: method));
        await using var _ = client;
        Assert.Equal(405, response.StatusCode);
        Assert.Equal("GET", response.Header("Allow"));
    }

    public static TheoryData<string> MalformedRequests() =>
    [
        "GET / HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "GET /  HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
        "GET noslash HTTP/1.1\r\nHost: x\r\n\r\n",
        // Absolute-form targets that are not usable: no authority, userinfo (RFC 9110 §4.2.4), a fragment, no scheme.
        C.BuildUpgradeRequest("http:///v1/ws"),
        C.BuildUpgradeRequest("http://user@localhost/v1/ws"),
        C.BuildUpgradeRequest("http://localhost/v1/ws#frag"),
        C.BuildUpgradeRequest("://localhost/v1/ws"),
        "\r\n\r\n",
    ];

    [Theory]
    [MemberData(nameof(MalformedRequests))]
    public async Task Malformed_requests_are_answered_400(string request)
    {
        await using var server = await WsTestServer.StartAsync(Options());
        var (client, response) = await SendAsync(server, request);
        await using var _ = client;
        Assert.Equal(400, response.StatusCode);
        Assert.Equal("close", response.Header("Connection"));
    }

    [Fact]
    public async Task Connection_header_lists_are_accepted()
    {
        await using var server = await WsTestServer.StartAsync(Options());
        var request = "GET / HTTP/1.1\r\nhost: x\r\nupgrade: WebSocket\r\nconnection: keep-alive, Upgrade\r\n" +
            "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n";
        var (client, response) = await SendAsync(server, request);
        await using var _ = client;
        Assert.Equal(101, response.StatusCode);
    }

    [Fact]
    public async Task Headers_over_the_limit_are_answered_431()
    {
        await using var server = await WsTestServer.StartAsync(Options(maxHandshakeBytes: 1024));
        var request = C.BuildUpgradeRequest(extraHeaders: ["X-Big: " + new string('a', 1100)]);
        var (client, response) = await SendAsync(server, request);
        await using var _ = client;
        Assert.Equal(431, response.StatusCode);
        Assert.True(await client.ReadUntilEofAsync());
    }

    [Fact]
    public async Task Request_just_under_the_limit_is_accepted()
    {
        string request = C.BuildUpgradeRequest();
        await using var server = await WsTestServer.StartAsync(Options(maxHandshakeBytes: request.Length));
        var (client, response) = await SendAsync(server, request);
        await using var _ = client;
        Assert.Equal(101, response.StatusCode);
    }

    [Fact]
    public async Task Application_rejection_is_sent_with_its_status_and_reason()
    {
        await using var server = await WsTestServer.StartAsync(Options());
        var (client, response) = await SendAsync(server, C.BuildUpgradeRequest("/forbidden"));
        await using var _ = client;
        Assert.Equal(404, response.StatusCode);
        Assert.Equal("No such endpoint.", response.Body.TrimEnd());
        Assert.True(await client.ReadUntilEofAsync());
        Assert.Equal(404, (await server.State.WaitForHandshakeAsync()).StatusCode);
    }

    [Theory]
    [InlineData("Host: other.example")] // a second, different value
    [InlineData("Host: localhost")]     // the same value again
    [InlineData("host: localhost")]     // names are case-insensitive
    public async Task More_than_one_Host_header_line_is_answered_400(string secondHost)
    {
        // RFC 9112 §3.2: 400 for "more than one Host header field line", whatever the values: identical duplicates too.
        var decided = 0;
        await using var server = await WsTestServer.StartAsync(Options(), request =>
        {
            Interlocked.Increment(ref decided);
            return WsTestServer.DefaultDecide(request);
        });
        var (client, response) = await SendAsync(server, C.BuildUpgradeRequest("/v1/ws", extraHeaders: [secondHost]));
        await using var _ = client;
        Assert.Equal(400, response.StatusCode);
        Assert.Equal("close", response.Header("Connection"));
        Assert.True(await client.ReadUntilEofAsync());
        var result = await server.State.WaitForHandshakeAsync();
        Assert.False(result.Accepted);
        Assert.Equal(400, result.StatusCode);
        Assert.Equal(0, Volatile.Read(ref decided));
    }

    /// <summary>Routes like a gateway: only /v1/ws exists.</summary>
    private static HandshakeDecision RouteV1(HandshakeRequest request) =>
        request.Path == "/v1/ws" ? HandshakeDecision.Accept(null) : HandshakeDecision.Reject(404, "No such endpoint.");

    [Fact]
    public async Task Absolute_form_target_is_accepted_and_routed_by_its_path_with_its_authority_as_Host()
    {
        await using var server = await WsTestServer.StartAsync(Options(), RouteV1);
        var (client, response) = await SendAsync(server, C.BuildUpgradeRequest("http://chat.example:8080/v1/ws?x=1"));
        await using var _ = client;
        Assert.Equal(101, response.StatusCode);
        Assert.Equal(C.ExpectedAccept(), response.Header("Sec-WebSocket-Accept"));

        var request = (await server.State.WaitForHandshakeAsync()).Request!;
        Assert.Equal("/v1/ws", request.Path);
        Assert.Equal("x=1", request.Query);

        // RFC 9112 §3.2.2: the target's authority replaces the Host header (sent as "localhost"), which stays in Headers.
        Assert.Equal("chat.example:8080", request.Host);
        Assert.Equal("localhost", request.GetHeader("Host"));

        // The connection works: a message is echoed.
        await client.SendFrameAsync(C.OpBinary, "hello"u8);
        var echo = await client.ReadFrameAsync();
        Assert.Equal("hello"u8.ToArray(), echo.Payload);
    }

    [Theory]
    [InlineData("http://localhost/other")]
    [InlineData("http://localhost")]         // empty path: "/" (RFC 9112 §3.2.1), not /v1/ws
    [InlineData("http://localhost/v1/ws/")]  // no normalisation: a different path
    public async Task Absolute_form_target_with_another_path_still_gets_404(string target)
    {
        await using var server = await WsTestServer.StartAsync(Options(), RouteV1);
        var (client, response) = await SendAsync(server, C.BuildUpgradeRequest(target));
        await using var _ = client;
        Assert.Equal(404, response.StatusCode);
        Assert.Equal(404, (await server.State.WaitForHandshakeAsync()).StatusCode);
    }

    [Fact]
    public async Task Absolute_form_target_still_needs_exactly_one_Host_header()
    {
        // RFC 9112 §3.2: the 400 for a missing or repeated Host applies to every HTTP/1.1 request, whatever the form.
        await using var server = await WsTestServer.StartAsync(Options(), RouteV1);
        var withoutHost = C.BuildUpgradeRequest("http://localhost/v1/ws").Replace("Host: localhost\r\n", "", StringComparison.Ordinal);
        var (client, response) = await SendAsync(server, withoutHost);
        await using var _ = client;
        Assert.Equal(400, response.StatusCode);
    }
}
