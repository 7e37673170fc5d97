using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Gateway.Protocol;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.Tokens;

namespace Gateway.Server.Tests;

/// <summary>
/// The HTTP API's edges: credentials are checked before any body byte is read, bodies have small limits, every error
/// is the JSON <c>{code, error, message}</c>, HTTP sends share the user's send bucket, and every id that can be made a
/// member can be removed.
/// </summary>
public sealed class HttpApiTests
{
    private const int HugeBody = 25 * 1024 * 1024;

    private static IPEndPoint EndPoint(TestGateway gw) => IPEndPoint.Parse(gw.HttpUri.Authority);

    /// <summary>Sends a request head announcing <paramref name="contentLength"/> bytes and only <paramref name="sent"/> of them.</summary>
    private static async Task<RawHttpResponse> PartialUploadAsync(TestGateway gw, string method, string path, string? authorization,
        long contentLength, int sent, string contentType = "application/json")
    {
        await using var raw = await RawWebSocketClient.ConnectAsync(EndPoint(gw));
        var head = $"{method} {path} HTTP/1.1\r\nHost: {gw.HttpUri.Authority}\r\nContent-Type: {contentType}\r\nContent-Length: {contentLength}\r\n"
            + (authorization is null ? "" : $"Authorization: {authorization}\r\n") + "Idempotency-Key: k1\r\n\r\n";
        await raw.SendRawAsync(Encoding.ASCII.GetBytes(head));
        await raw.SendRawAsync(new byte[sent]);

        // The rest of the body never comes: an answer now proves the server decided without it.
        return await raw.ReadHttpResponseAsync(TimeSpan.FromSeconds(10));
    }

    private static void AssertError(RawHttpResponse response, int status, int code, string error)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.StartsWith("application/json", response.Header("Content-Type"), StringComparison.Ordinal);
        AssertErrorBody(response.Body, code, error);
    }

    private static void AssertErrorBody(string body, int code, string error)
    {
        using var json = JsonDocument.Parse(body);
        Assert.Equal(code, json.RootElement.GetProperty("code").GetInt32());
        Assert.Equal(error, json.RootElement.GetProperty("error").GetString());
        Assert.False(string.IsNullOrEmpty(json.RootElement.GetProperty("message").GetString()));
    }

    [Fact]
    public async Task Unauthenticated_huge_bodies_are_refused_before_they_are_read_even_sixteen_at_once()
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateChatAsync("general", "alice");

        // 16 concurrent 25 MB uploads without (or with forged) credentials, each stopping after 64 KiB: every one is
        // answered 401 while 99.7 % of its body is still unsent, so none can have been buffered.
        var uploads = Enumerable.Range(0, 16).Select(i => (i % 4) switch
        {
            0 => PartialUploadAsync(gw, "POST", "/v1/admin/tenants/t1/chats", null, HugeBody, 64 * 1024),
            1 => PartialUploadAsync(gw, "POST", "/v1/admin/tenants/t1/chats/general/members", "Bearer not-the-key", HugeBody, 64 * 1024),
            2 => PartialUploadAsync(gw, "POST", "/v1/chats/general/messages", null, HugeBody, 64 * 1024),
            _ => PartialUploadAsync(gw, "POST", "/v1/chats/general/messages", "Bearer forged.token.here", HugeBody, 64 * 1024),
        }).ToArray();
        // (No heap measurement: other test classes run in this process at the same time, and an answer that comes while
        // the body is still unsent already proves the body was not buffered.)
        foreach (var response in await Task.WhenAll(uploads))
        {
            AssertError(response, 401, 401, "Unauthorized");
        }
    }

    [Fact]
    public async Task Authenticated_bodies_over_the_endpoint_limit_are_413_before_they_are_read()
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateChatAsync("general", "alice");

        AssertError(await PartialUploadAsync(gw, "POST", "/v1/admin/tenants/t1/chats", $"Bearer {gw.AdminKey}", Http.HttpApi.AdminBodyLimit + 1, 1024),
            413, 413, "PayloadTooLarge");
        long sendLimit = 6L * 32768 + 4096;
        AssertError(await PartialUploadAsync(gw, "POST", "/v1/chats/general/messages", $"Bearer {gw.Token("alice")}", sendLimit + 1, 1024),
            413, 413, "PayloadTooLarge");

        // A send body at the largest valid size is read: 32 KiB of content, every byte JSON-escaped as \u00XX.
        var escaped = string.Concat(Enumerable.Repeat("\\u0001", 32768));
        using var largest = await SendAsync(gw, gw.Token("alice"), "max", $"{{\"contentType\":\"application/octet-stream\",\"text\":\"{escaped}\"}}");
        Assert.Equal(HttpStatusCode.Created, largest.StatusCode);
    }

    [Fact]
    public async Task A_chunked_body_over_the_limit_is_413_json()
    {
        await using var gw = await TestGateway.StartAsync();
        await using var raw = await RawWebSocketClient.ConnectAsync(EndPoint(gw));
        var head = $"POST /v1/admin/tenants/t1/chats HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nAuthorization: Bearer {gw.AdminKey}\r\n\r\n";
        await raw.SendRawAsync(Encoding.ASCII.GetBytes(head));
        var chunk = new string(' ', 16 * 1024);
        for (var i = 0; i < 5; i++)
        {
            await raw.SendRawAsync(Encoding.ASCII.GetBytes($"{chunk.Length:x}\r\n{chunk}\r\n"));
        }

        AssertError(await raw.ReadHttpResponseAsync(TimeSpan.FromSeconds(10)), 413, 413, "PayloadTooLarge");
    }

    [Fact]
    public async Task Thousands_of_mutated_json_bodies_never_get_a_5xx_and_every_refusal_is_a_json_error()
    {
        // The body parsing we own, fed seeded mutations of valid bodies (byte flips, truncations, insertions, random
        // bytes): whatever the input, the answer is a success or a 4xx with the JSON error shape, never a 5xx.
        await using var gw = await TestGateway.StartAsync(null, "--Gateway:SendsPerSecond=100000", "--Gateway:SendBurst=100000");
        await gw.CreateChatAsync("general", "alice");
        var random = new Random(20261203);
        (string Path, string Body, string Authorization)[] seeds =
        [
            ("/v1/admin/tenants/t1/chats", """{"chatId":"c1","members":["alice","bob"]}""", gw.AdminKey),
            ("/v1/admin/tenants/t1/chats/general/members", """{"userId":"carol"}""", gw.AdminKey),
            ("/v1/chats/general/messages", """{"contentType":"text/plain","text":"hi","expiresAt":null}""", gw.Token("alice")),
            ("/v1/chats/general/messages", """{"contentType":"application/octet-stream","contentBase64":"AAEC"}""", gw.Token("alice")),
        ];
        var n = 0;
        foreach (var (path, body, authorization) in seeds)
        {
            for (var i = 0; i < 250; i++, n++)
            {
                var bytes = Mutate(Encoding.UTF8.GetBytes(body), random);
                using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent(bytes) };
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", authorization);
                request.Headers.Add("Idempotency-Key", $"fuzz-{n}");
                using var response = await gw.Http.SendAsync(request);
                var status = (int)response.StatusCode;
                var text = await response.Content.ReadAsStringAsync();
                Assert.True(status < 500, $"{path} answered {status} to {Convert.ToHexString(bytes)}: {text}");
                if (status >= 400)
                {
                    using var json = JsonDocument.Parse(text);
                    Assert.True(json.RootElement.TryGetProperty("code", out _) && json.RootElement.TryGetProperty("error", out _)
                        && json.RootElement.TryGetProperty("message", out _), $"{path} answered {status} without the JSON error: {text}");
                }
            }
        }
    }

    private const string JsonSpecials = "{}[]\",:\\0-e.tnf";

    private static byte[] Mutate(byte[] seed, Random random)
    {
        var bytes = new List<byte>(seed);
        for (var k = random.Next(1, 4); k > 0; k--)
        {
            switch (random.Next(5))
            {
                case 0 when bytes.Count > 0:
                    bytes[random.Next(bytes.Count)] ^= (byte)(1 << random.Next(8));
                    break;
                case 1 when bytes.Count > 0:
                    bytes.RemoveRange(random.Next(bytes.Count), 1);
                    break;
                case 2:
                    bytes.Insert(random.Next(bytes.Count + 1), (byte)random.Next(256));
                    break;
                case 3 when bytes.Count > 0:
                    var cut = random.Next(bytes.Count);
                    bytes.RemoveRange(cut, bytes.Count - cut);
                    break;
                default:
                    // A JSON-significant character where it may break the shape most.
                    bytes.Insert(random.Next(bytes.Count + 1), (byte)JsonSpecials[random.Next(JsonSpecials.Length)]);
                    break;
            }
        }

        return [.. bytes];
    }

    private static async Task<HttpResponseMessage> SendAsync(TestGateway gw, string? token, string? key, string body,
        string chat = "general", string contentType = "application/json")
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/chats/{chat}/messages")
        {
            Content = new StringContent(body, Encoding.UTF8, contentType),
        };
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        if (key is not null)
        {
            request.Headers.Add("Idempotency-Key", key);
        }

        return await gw.Http.SendAsync(request);
    }

    [Fact]
    public async Task Http_sends_share_the_users_send_bucket_with_its_websocket_connections()
    {
        await using var gw = await TestGateway.StartAsync(null, "--Gateway:SendsPerSecond=0.01", "--Gateway:SendBurst=5");
        await gw.CreateChatAsync("general", "alice", "bob");
        for (var i = 0; i < 5; i++)
        {
            using var ok = await SendAsync(gw, gw.Token("alice"), $"k{i}", """{"text":"hi"}""");
            Assert.Equal(HttpStatusCode.Created, ok.StatusCode);
        }

        using var refused = await SendAsync(gw, gw.Token("alice"), "k5", """{"text":"hi"}""");
        Assert.Equal((HttpStatusCode)429, refused.StatusCode);
        var retryAfter = refused.Headers.RetryAfter?.Delta;
        Assert.NotNull(retryAfter);
        Assert.InRange(retryAfter!.Value.TotalSeconds, 1, 100);
        var body = await refused.Content.ReadAsStringAsync();
        AssertErrorBody(body, 40, "RateLimited");
        using (var json = JsonDocument.Parse(body))
        {
            Assert.InRange(json.RootElement.GetProperty("retryAfterMs").GetInt64(), 1, 100_000);
        }

        // The refused send was not attempted; bob's bucket is his own.
        using var bobSends = await SendAsync(gw, gw.Token("bob"), "b1", """{"text":"hi"}""");
        Assert.Equal(HttpStatusCode.Created, bobSends.StatusCode);

        // Alice's socket draws on the same empty bucket.
        await using var socket = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
        await socket.SendTextAsync("general", "hi", "ws-1");
        var error = await socket.ReceiveAsync<ErrorFrame>();
        Assert.Equal(ErrorCode.RateLimited, error.Code);
    }

    [Fact]
    public async Task A_key_reused_for_another_payload_is_409_over_http_and_error_21_over_websocket()
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateChatAsync("general", "alice");
        using var first = await SendAsync(gw, gw.Token("alice"), "k", """{"text":"one"}""");
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        using var retry = await SendAsync(gw, gw.Token("alice"), "k", """{"text":"one"}""");
        Assert.Equal(HttpStatusCode.OK, retry.StatusCode);
        using var conflict = await SendAsync(gw, gw.Token("alice"), "k", """{"text":"two"}""");
        Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);
        AssertErrorBody(await conflict.Content.ReadAsStringAsync(), 21, "IdempotencyConflict");

        // The same key over the socket: the HTTP send stored "one" as text/plain.
        await using var socket = await WsClient.ConnectAsync(gw.WebSocketUri, gw.Token("alice"));
        await socket.SendTextAsync("general", "two", "k");
        Assert.Equal(ErrorCode.IdempotencyConflict, (await socket.ReceiveAsync<ErrorFrame>()).Code);
        await socket.SendTextAsync("general", "one", "k");
        var ack = await socket.ReceiveAsync<SendAckFrame>();
        Assert.Equal((1UL, true), (ack.Seq, ack.Duplicate));

        var page = await HistoryAsync(gw, gw.Token("alice"), "general");
        Assert.Contains("\"one\"", page, StringComparison.Ordinal);
        Assert.DoesNotContain("two", page, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unhandled_exception_is_a_logged_json_500_and_a_bad_request_exception_keeps_its_status()
    {
        // The middleware alone, on a host whose routes throw: no route of the real API is meant to.
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        await using var app = builder.Build();
        Http.HttpErrors.UseJsonErrors(app);
        app.MapGet("/boom", string () => throw new InvalidOperationException("secret detail"));
        app.MapGet("/bad", string () => throw new Microsoft.AspNetCore.Http.BadHttpRequestException("no good", 413));
        await app.StartAsync();
        try
        {
            var address = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
                .Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.Single();
            using var http = new HttpClient { BaseAddress = new Uri(address) };

            using var boom = await http.GetAsync("/boom");
            Assert.Equal(HttpStatusCode.InternalServerError, boom.StatusCode);
            var body = await boom.Content.ReadAsStringAsync();
            AssertErrorBody(body, 50, "Internal");
            Assert.DoesNotContain("secret detail", body, StringComparison.Ordinal);

            using var bad = await http.GetAsync("/bad");
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, bad.StatusCode);
            AssertErrorBody(await bad.Content.ReadAsStringAsync(), 413, "PayloadTooLarge");
        }
        finally
        {
            await app.StopAsync();
        }
    }

    [Fact]
    public async Task A_content_type_with_a_space_is_accepted()
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateChatAsync("general", "alice");
        using var sent = await SendAsync(gw, gw.Token("alice"), "k", """{"contentType":"text/plain; charset=utf-8","text":"héllo"}""");
        Assert.Equal(HttpStatusCode.Created, sent.StatusCode);
        var page = await HistoryAsync(gw, gw.Token("alice"), "general");
        Assert.Contains("text/plain; charset=utf-8", page, StringComparison.Ordinal);
    }

    private static async Task<string> HistoryAsync(TestGateway gw, string token, string chat)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/chats/{chat}/messages");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await gw.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    public static TheoryData<string, bool> IdClasses() => new()
    {
        { "alice", true },
        { "0123456789", true },
        { "-_.~", true },
        { "a.b", true },
        { "...", true },
        { "a%b", true },
        { "%2F", true },
        { "a%2Fb", true },
        { "auth0|123", true },
        { "q?x#y", true },
        { "user@example.com", true },
        { "back\\slash", true },
        { "a/b", false },
        { "/", false },
        { ".", false },
        { "..", false },
        { "a b", false },
        { "caf\u00e9", false },
        { "\u4e2d\u6587", false },
    };

    [Theory]
    [MemberData(nameof(IdClasses))]
    public async Task Every_user_id_that_can_be_made_a_member_can_be_removed(string userId, bool valid)
    {
        await using var gw = await TestGateway.StartAsync();
        using var create = await AdminAsync(gw, HttpMethod.Post, "/v1/admin/tenants/t1/chats",
            JsonSerializer.Serialize(new { chatId = "c", members = new[] { "keeper", userId } }));
        if (!valid)
        {
            Assert.Equal(HttpStatusCode.BadRequest, create.StatusCode);
            AssertErrorBody(await create.Content.ReadAsStringAsync(), 20, "ValidationFailed");

            // Nor can it be added one by one, or named in a removal.
            await gw.CreateChatAsync("c", "keeper");
            using var add = await AdminAsync(gw, HttpMethod.Post, "/v1/admin/tenants/t1/chats/c/members", JsonSerializer.Serialize(new { userId }));
            Assert.Equal(HttpStatusCode.BadRequest, add.StatusCode);
            Assert.Equal(["keeper"], await MembersAsync(gw));
            return;
        }

        Assert.Equal(HttpStatusCode.Created, create.StatusCode);
        Assert.Contains(userId, await MembersAsync(gw));

        using var removed = await AdminAsync(gw, HttpMethod.Delete, $"/v1/admin/tenants/t1/chats/c/members/{Uri.EscapeDataString(userId)}");
        Assert.Equal(HttpStatusCode.NoContent, removed.StatusCode);
        Assert.Equal(["keeper"], await MembersAsync(gw));

        // A removal that removes nothing is not a success.
        using var again = await AdminAsync(gw, HttpMethod.Delete, $"/v1/admin/tenants/t1/chats/c/members/{Uri.EscapeDataString(userId)}");
        Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        AssertErrorBody(await again.Content.ReadAsStringAsync(), 10, "NotMember");
    }

    [Fact]
    public async Task Removing_a_slash_or_dot_segment_never_answers_success()
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateChatAsync("c", "keeper", "a");
        foreach (var path in new[] { "a%2Fb", "%2E%2E", "%2E", "a%2F", "%2Fa" })
        {
            using var response = await AdminAsync(gw, HttpMethod.Delete, $"/v1/admin/tenants/t1/chats/c/members/{path}");
            Assert.NotEqual(HttpStatusCode.NoContent, response.StatusCode);
            Assert.StartsWith("{", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.Equal(["a", "keeper"], (await MembersAsync(gw)).Order(StringComparer.Ordinal));
    }

    private static async Task<HttpResponseMessage> AdminAsync(TestGateway gw, HttpMethod method, string path, string? json = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", gw.AdminKey);
        return await gw.Http.SendAsync(request);
    }

    private static async Task<string[]> MembersAsync(TestGateway gw, string chat = "c")
    {
        using var response = await AdminAsync(gw, HttpMethod.Get, $"/v1/admin/tenants/t1/chats/{chat}/members");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return [.. json.RootElement.GetProperty("members").EnumerateArray().Select(m => m.GetString()!)];
    }

    /// <summary>Who presents what.</summary>
    public enum Caller
    {
        None,
        Admin,
        ForgedAdmin,
        Alice,
        ForgedToken,
        ExpiredToken,
        AlgNoneToken,
        OtherTenant,
        Outsider,
        SlashUser,
    }

    private static string? Authorization(TestGateway gw, Caller caller) => caller switch
    {
        Caller.None => null,
        Caller.Admin => gw.AdminKey,
        Caller.ForgedAdmin => gw.AdminKey + "x",
        Caller.Alice => gw.Token("alice"),
        Caller.ForgedToken => Auth.JwtAuthenticator.Mint(new SymmetricSecurityKey(RandomNumberGenerator.GetBytes(32)), "t1", "alice", TimeSpan.FromHours(1)),
        Caller.ExpiredToken => Expired(gw),
        Caller.AlgNoneToken => AlgNone("t1", "alice"),
        Caller.OtherTenant => gw.Token("alice", tenantId: "t2"),
        Caller.Outsider => gw.Token("mallory"),
        Caller.SlashUser => gw.Token("a/b"), // validly signed, but no such user can exist (PROTOCOL.md §5)
        _ => throw new ArgumentOutOfRangeException(nameof(caller)),
    };

    private static string Expired(TestGateway gw) => new Microsoft.IdentityModel.JsonWebTokens.JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
    {
        Claims = new Dictionary<string, object> { ["sub"] = "alice", ["tid"] = "t1" },
        Expires = DateTime.UtcNow.AddMinutes(-10),
        SigningCredentials = new SigningCredentials(gw.SigningKey, SecurityAlgorithms.HmacSha256),
    });

    private static string AlgNone(string tenant, string user)
    {
        static string B64(string s) => Base64UrlEncoder.Encode(s);
        var exp = DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds();
        return $"{B64("""{"alg":"none","typ":"JWT"}""")}.{B64($$"""{"sub":"{{user}}","tid":"{{tenant}}","exp":{{exp}}}""")}.";
    }

    private const string Json = "application/json";
    private const string GoodChat = """{"chatId":"new","members":["x"]}""";
    private const string GoodMember = """{"userId":"bob"}""";
    private const string GoodSend = """{"contentType":"text/plain","text":"hi"}""";

    /// <summary><paramref name="json"/> followed by spaces up to <paramref name="length"/> bytes: valid JSON of that size.</summary>
    private static string Padded(string json, int length) => json + new string(' ', length - json.Length);

    /// <summary>method, path, caller, content type, body, expected status, code, error.</summary>
    public static TheoryData<string, string, Caller, string?, string?, int, int, string> Cases() => new()
    {
        // Credentials, on every endpoint that needs them.
        { "POST", "/v1/admin/tenants/t1/chats", Caller.None, Json, GoodChat, 401, 401, "Unauthorized" },
        { "POST", "/v1/admin/tenants/t1/chats", Caller.ForgedAdmin, Json, GoodChat, 401, 401, "Unauthorized" },
        { "POST", "/v1/admin/tenants/t1/chats", Caller.Alice, Json, GoodChat, 401, 401, "Unauthorized" },
        { "POST", "/v1/admin/tenants/t1/chats/general/members", Caller.None, Json, GoodMember, 401, 401, "Unauthorized" },
        { "POST", "/v1/admin/tenants/t1/chats/general/members", Caller.ForgedAdmin, Json, GoodMember, 401, 401, "Unauthorized" },
        { "DELETE", "/v1/admin/tenants/t1/chats/general/members/alice", Caller.None, null, null, 401, 401, "Unauthorized" },
        { "DELETE", "/v1/admin/tenants/t1/chats/general/members/alice", Caller.Alice, null, null, 401, 401, "Unauthorized" },
        { "GET", "/v1/admin/tenants/t1/chats/general/members", Caller.None, null, null, 401, 401, "Unauthorized" },
        { "GET", "/v1/admin/tenants/t1/chats/general/members", Caller.ForgedAdmin, null, null, 401, 401, "Unauthorized" },
        { "POST", "/v1/chats/general/messages", Caller.None, Json, GoodSend, 401, 401, "Unauthorized" },
        { "POST", "/v1/chats/general/messages", Caller.ForgedToken, Json, GoodSend, 401, 401, "Unauthorized" },
        { "POST", "/v1/chats/general/messages", Caller.ExpiredToken, Json, GoodSend, 401, 401, "Unauthorized" },
        { "POST", "/v1/chats/general/messages", Caller.AlgNoneToken, Json, GoodSend, 401, 401, "Unauthorized" },
        { "POST", "/v1/chats/general/messages", Caller.Admin, Json, GoodSend, 401, 401, "Unauthorized" },
        { "GET", "/v1/chats/general/messages", Caller.None, null, null, 401, 401, "Unauthorized" },
        { "GET", "/v1/chats/general/messages", Caller.ForgedToken, null, null, 401, 401, "Unauthorized" },
        { "GET", "/v1/chats/general/messages", Caller.ExpiredToken, null, null, 401, 401, "Unauthorized" },
        { "GET", "/v1/chats/general/messages", Caller.AlgNoneToken, null, null, 401, 401, "Unauthorized" },
        { "POST", "/v1/chats/general/messages", Caller.SlashUser, Json, GoodSend, 401, 401, "Unauthorized" },
        { "GET", "/v1/chats/general/messages", Caller.SlashUser, null, null, 401, 401, "Unauthorized" },

        // Other tenants and non-members.
        { "POST", "/v1/chats/general/messages", Caller.OtherTenant, Json, GoodSend, 403, 10, "NotMember" },
        { "POST", "/v1/chats/general/messages", Caller.Outsider, Json, GoodSend, 403, 10, "NotMember" },
        { "GET", "/v1/chats/general/messages", Caller.OtherTenant, null, null, 403, 10, "NotMember" },
        { "GET", "/v1/chats/general/messages", Caller.Outsider, null, null, 403, 10, "NotMember" },
        { "DELETE", "/v1/admin/tenants/t2/chats/general/members/alice", Caller.Admin, null, null, 404, 10, "NotMember" },

        // Malformed bodies.
        { "POST", "/v1/admin/tenants/t1/chats", Caller.Admin, Json, "{\"chatId\":", 400, 20, "ValidationFailed" },
        { "POST", "/v1/admin/tenants/t1/chats", Caller.Admin, Json, "{\"chatId\":5}", 400, 20, "ValidationFailed" },
        { "POST", "/v1/admin/tenants/t1/chats", Caller.Admin, Json, "[1,2]", 400, 20, "ValidationFailed" },
        { "POST", "/v1/admin/tenants/t1/chats", Caller.Admin, Json, "null", 400, 20, "ValidationFailed" },
        { "POST", "/v1/admin/tenants/t1/chats", Caller.Admin, Json, "", 400, 20, "ValidationFailed" },
        { "POST", "/v1/admin/tenants/t1/chats", Caller.Admin, Json, "{}", 400, 20, "ValidationFailed" },
        { "POST", "/v1/admin/tenants/t1/chats", Caller.Admin, Json, """{"chatId":"a.b","members":["x"]}""", 400, 20, "ValidationFailed" },
        { "POST", "/v1/admin/tenants/t1/chats/general/members", Caller.Admin, Json, "{\"userId\":[]}", 400, 20, "ValidationFailed" },
        { "POST", "/v1/admin/tenants/t1/chats/general/members", Caller.Admin, Json, "not json", 400, 20, "ValidationFailed" },
        { "POST", "/v1/chats/general/messages", Caller.Alice, Json, "{\"text\":", 400, 20, "ValidationFailed" },
        { "POST", "/v1/chats/general/messages", Caller.Alice, Json, "{\"text\":1}", 400, 20, "ValidationFailed" },
        { "POST", "/v1/chats/general/messages", Caller.Alice, Json, "{\"contentBase64\":\"!!\"}", 400, 20, "ValidationFailed" },
        { "POST", "/v1/chats/general/messages", Caller.Alice, Json, "{\"contentType\":\"a\\tb\",\"text\":\"x\"}", 400, 20, "ValidationFailed" },
        { "POST", "/v1/chats/general/messages", Caller.Alice, Json, "{\"expiresAt\":\"soon\"}", 400, 20, "ValidationFailed" },

        // Oversize bodies (the limits: admin 64 KiB, send 6 × 32 KiB + 4 KiB).
        { "POST", "/v1/admin/tenants/t1/chats", Caller.Admin, Json, Padded(GoodChat, 64 * 1024 + 1), 413, 413, "PayloadTooLarge" },
        { "POST", "/v1/admin/tenants/t1/chats/general/members", Caller.Admin, Json, Padded(GoodMember, 64 * 1024 + 1), 413, 413, "PayloadTooLarge" },
        { "POST", "/v1/chats/general/messages", Caller.Alice, Json, Padded(GoodSend, 6 * 32768 + 4096 + 1), 413, 413, "PayloadTooLarge" },
        { "POST", "/v1/admin/tenants/t1/chats", Caller.Admin, Json, Padded(GoodChat, 64 * 1024), 201, 0, "" },

        // Wrong content types.
        { "POST", "/v1/admin/tenants/t1/chats", Caller.Admin, "text/plain", GoodChat, 415, 415, "UnsupportedMediaType" },
        { "POST", "/v1/admin/tenants/t1/chats/general/members", Caller.Admin, "application/x-www-form-urlencoded", "userId=bob", 415, 415, "UnsupportedMediaType" },
        { "POST", "/v1/chats/general/messages", Caller.Alice, "text/plain", GoodSend, 415, 415, "UnsupportedMediaType" },
        { "POST", "/v1/chats/general/messages", Caller.Alice, null, null, 415, 415, "UnsupportedMediaType" },

        // Bad query values and path ids.
        { "GET", "/v1/chats/general/messages?limit=abc", Caller.Alice, null, null, 400, 20, "ValidationFailed" },
        { "GET", "/v1/chats/general/messages?beforeSeq=-1", Caller.Alice, null, null, 400, 20, "ValidationFailed" },
        { "GET", "/v1/chats/general/messages?limit=0", Caller.Alice, null, null, 400, 20, "ValidationFailed" },
        { "GET", "/v1/chats/general/messages?limit=201", Caller.Alice, null, null, 400, 20, "ValidationFailed" },
        { "GET", "/v1/chats/a.b/messages", Caller.Alice, null, null, 403, 10, "NotMember" },
        { "POST", "/v1/chats/a.b/messages", Caller.Alice, Json, GoodSend, 400, 20, "ValidationFailed" },
        { "DELETE", "/v1/admin/tenants/t1/chats/general/members/a%20b", Caller.Admin, null, null, 400, 20, "ValidationFailed" },
        { "DELETE", "/v1/admin/tenants/t1/chats/general/members/a%2Fb", Caller.Admin, null, null, 404, 10, "NotMember" },
        { "DELETE", "/v1/admin/tenants/t1/chats/general/members/nobody", Caller.Admin, null, null, 404, 10, "NotMember" },
        { "DELETE", "/v1/admin/tenants/t.1/chats/general/members/alice", Caller.Admin, null, null, 400, 20, "ValidationFailed" },
        { "GET", "/v1/admin/tenants/t.1/chats/general/members", Caller.Admin, null, null, 400, 20, "ValidationFailed" },
        { "GET", "/v1/admin/tenants/t1/chats/" + new string('c', 65) + "/members", Caller.Admin, null, null, 400, 20, "ValidationFailed" },
        { "POST", "/v1/admin/tenants/t1/chats/" + new string('c', 65) + "/members", Caller.Admin, Json, GoodMember, 400, 20, "ValidationFailed" },
        { "POST", "/v1/admin/tenants/" + new string('t', 65) + "/chats", Caller.Admin, Json, GoodChat, 400, 20, "ValidationFailed" },
        { "GET", "/v1/chats/" + new string('c', 65) + "/messages", Caller.Alice, null, null, 403, 10, "NotMember" },

        // Unknown routes and methods, and a URL longer than any route of ours.
        { "GET", "/nope", Caller.None, null, null, 404, 404, "NotFound" },
        { "GET", "/v1/admin/tenants/t1/chats/general/members/alice/x", Caller.Admin, null, null, 404, 404, "NotFound" },
        { "PUT", "/v1/chats/general/messages", Caller.Alice, Json, GoodSend, 405, 405, "MethodNotAllowed" },
        { "DELETE", "/healthz", Caller.None, null, null, 405, 405, "MethodNotAllowed" },
        { "GET", "/v1/chats/general/messages?x=" + new string('a', 3000), Caller.Alice, null, null, 414, 414, "UriTooLong" },

        // And the happy paths answer what they did before.
        { "POST", "/v1/chats/general/messages", Caller.Alice, Json, GoodSend, 201, 0, "" },
        { "GET", "/v1/chats/general/messages?limit=5", Caller.Alice, null, null, 200, 0, "" },
        { "POST", "/v1/admin/tenants/t1/chats/general/members", Caller.Admin, Json, GoodMember, 200, 0, "" },
        { "DELETE", "/v1/admin/tenants/t1/chats/general/members/alice", Caller.Admin, null, null, 204, 0, "" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Every_endpoint_answers_bad_requests_with_the_status_and_the_json_error(string method, string path, Caller caller,
        string? contentType, string? body, int status, int code, string error)
    {
        await using var gw = await TestGateway.StartAsync();
        await gw.CreateChatAsync("general", "alice");
        await gw.CreateChatAsync("t2", "general", ["bob"]);
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (body is not null)
        {
            request.Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
            if (contentType is not null)
            {
                request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
            }
        }

        if (Authorization(gw, caller) is { } credential)
        {
            request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + credential);
        }

        request.Headers.Add("Idempotency-Key", "table-1");
        using var response = await gw.Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == (int)response.StatusCode, $"{method} {path} as {caller}: {(int)response.StatusCode} {text}");
        if (status >= 400)
        {
            Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
            AssertErrorBody(text, code, error);
        }
    }
}
