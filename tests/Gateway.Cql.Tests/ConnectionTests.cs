using System.Collections.Concurrent;
using System.Net;
using Gateway.Cql.Cluster;
using Gateway.Cql.Protocol;

namespace Gateway.Cql.Tests;

/// <summary>One connection against the scripted loopback node: multiplexing, timeouts, heartbeat, failure.</summary>
public sealed class ConnectionTests
{
    private static CqlConnectionSettings Settings(int maxRequests = 2048, double heartbeatSeconds = 30, double requestTimeoutSeconds = 5) =>
        new(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(requestTimeoutSeconds), TimeSpan.FromSeconds(heartbeatSeconds), maxRequests);

    private static Task<CqlConnection> Open(ScriptedCqlServer server, CqlConnectionSettings settings) =>
        CqlConnection.OpenAsync(server.Address, new IPEndPoint(IPAddress.Loopback, server.Port), "localhost", settings);

    private static byte[] Query(string text)
    {
        using var b = new CqlFrameBuilder(64);
        CqlRequests.WriteQuery(b, text, [], new CqlQueryParameters(CqlConsistency.One));
        return b.WrittenSpan.ToArray();
    }

    [Fact]
    public async Task A_thousand_concurrent_requests_on_one_connection_are_matched_when_answered_out_of_order()
    {
        await using var server = new ScriptedCqlServer();
        var held = new ConcurrentQueue<(ServerConnection, ServerRequest)>();
        server.Handler = (c, r) =>
        {
            held.Enqueue((c, r));
            return Task.CompletedTask;
        };
        await using var connection = await Open(server, Settings());

        var tasks = Enumerable.Range(0, 1000).Select(i => connection.RequestAsync(Query($"q{i}"), TimeSpan.FromSeconds(10))).ToArray();
        await Poll.UntilAsync(() => held.Count == 1000, "all 1000 requests at the server");
        Assert.Equal(1000, held.Select(h => h.Item2.Stream).Distinct().Count());

        // Answer in a shuffled order, each with its own query text as the keyspace so a mix-up would show.
        var answers = held.ToArray();
        Random.Shared.Shuffle(answers);
        foreach (var (c, r) in answers)
        {
            await c.ReplyAsync(r, CqlOpcode.Result, TestWire.SetKeyspace(r.Text));
        }

        for (var i = 0; i < tasks.Length; i++)
        {
            using var result = CqlResponses.ReadResult(await tasks[i]);
            Assert.Equal($"q{i}", result.Keyspace);
        }

        Assert.Equal(0, connection.InFlight);
    }

    [Fact]
    public async Task A_timed_out_request_keeps_its_stream_id_until_the_late_answer_arrives()
    {
        await using var server = new ScriptedCqlServer();
        var held = new ConcurrentQueue<(ServerConnection C, ServerRequest R)>();
        server.Handler = async (c, r) =>
        {
            if (r.Text == "slow")
            {
                held.Enqueue((c, r));
            }
            else
            {
                await c.ReplyAsync(r, CqlOpcode.Result, TestWire.SetKeyspace(r.Text));
            }
        };
        await using var connection = await Open(server, Settings(maxRequests: 2));

        await Assert.ThrowsAsync<CqlTimeoutException>(() => connection.RequestAsync(Query("slow"), TimeSpan.FromMilliseconds(100)));
        await Poll.UntilAsync(() => held.Count == 1, "the slow request at the server");
        var slowStream = held.Single().R.Stream;

        // One id is still reserved for the late answer, so a second request in flight exhausts the two ids.
        var blocker = new TaskCompletionSource();
        server.Handler = (c, r) =>
        {
            // Answered later, off the server's read loop, so that requests behind it are still read.
            _ = Task.Run(async () =>
            {
                if (r.Text == "hold")
                {
                    await blocker.Task;
                }

                await c.ReplyAsync(r, CqlOpcode.Result, TestWire.SetKeyspace(r.Text));
            });
            return Task.CompletedTask;
        };
        var hold = connection.RequestAsync(Query("hold"), TimeSpan.FromSeconds(5));
        await Assert.ThrowsAsync<CqlNotSentException>(() => connection.RequestAsync(Query("refused"), TimeSpan.FromSeconds(5)));
        await Poll.UntilAsync(() => server.Received.Any(r => r.Opcode == CqlOpcode.Query && r.Text == "hold"), "the second request at the server");
        Assert.NotEqual(slowStream, server.Received.Single(r => r.Opcode == CqlOpcode.Query && r.Text == "hold").Stream);
        Assert.DoesNotContain(server.Received, r => r.Opcode == CqlOpcode.Query && r.Text == "refused");

        // The late answer frees the id; it is not taken for anyone else's response.
        var (c0, r0) = held.Single();
        await c0.ReplyAsync(r0, CqlOpcode.Result, TestWire.SetKeyspace("late"));
        await Poll.UntilAsync(() => connection.InFlight == 1, "the late answer to release its id");
        using (var again = CqlResponses.ReadResult(await connection.RequestAsync(Query("again"), TimeSpan.FromSeconds(5))))
        {
            Assert.Equal("again", again.Keyspace);
        }

        blocker.SetResult();
        using var held2 = CqlResponses.ReadResult(await hold);
        Assert.Equal("hold", held2.Keyspace);
    }

    [Fact]
    public async Task A_cancelled_request_is_cancelled_and_its_id_waits_for_the_late_answer()
    {
        await using var server = new ScriptedCqlServer();
        var held = new ConcurrentQueue<(ServerConnection C, ServerRequest R)>();
        server.Handler = (c, r) =>
        {
            held.Enqueue((c, r));
            return Task.CompletedTask;
        };
        await using var connection = await Open(server, Settings());
        using var cts = new CancellationTokenSource();
        var request = connection.RequestAsync(Query("q"), TimeSpan.FromSeconds(30), cts.Token);
        await Poll.UntilAsync(() => held.Count == 1, "the request at the server");
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);
        Assert.Equal(1, connection.InFlight);

        var (c, r) = held.Single();
        await c.ReplyAsync(r, CqlOpcode.Result, TestWire.Void());
        await Poll.UntilAsync(() => connection.InFlight == 0, "the late answer to free the id");
    }

    [Fact]
    public async Task An_idle_connection_sends_options_heartbeats_and_closes_when_one_goes_unanswered()
    {
        await using var server = new ScriptedCqlServer();
        await using var connection = await Open(server, Settings(heartbeatSeconds: 0.1, requestTimeoutSeconds: 0.3));
        var handshakeOptions = server.Received.Count(r => r.Opcode == CqlOpcode.Options);

        await Poll.UntilAsync(() => server.Received.Count(r => r.Opcode == CqlOpcode.Options) >= handshakeOptions + 2, "two heartbeats");
        Assert.False(connection.IsClosed);

        server.AnswerHeartbeats = false;
        var closed = new TaskCompletionSource<Exception>();
        connection.Closed = (_, e) => closed.TrySetResult(e);
        var reason = await closed.Task.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Contains("Heartbeat", reason.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_dropped_connection_fails_every_pending_request_with_a_connection_exception()
    {
        await using var server = new ScriptedCqlServer();
        server.Handler = (_, _) => Task.CompletedTask;
        await using var connection = await Open(server, Settings());
        var pending = Enumerable.Range(0, 20).Select(i => connection.RequestAsync(Query($"q{i}"), TimeSpan.FromSeconds(30))).ToArray();
        await Poll.UntilAsync(() => server.Received.Count(r => r.Opcode == CqlOpcode.Query) == 20, "the requests at the server");

        server.DropAll();

        foreach (var p in pending)
        {
            await Assert.ThrowsAsync<CqlConnectionException>(() => p);
        }

        Assert.True(connection.IsClosed);
        await Assert.ThrowsAsync<CqlNotSentException>(() => connection.RequestAsync(Query("after"), TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public async Task An_error_answer_surfaces_as_a_server_exception_with_the_node_address()
    {
        await using var server = new ScriptedCqlServer();
        server.Handler = (c, r) => c.ReplyAsync(r, CqlOpcode.Error, TestWire.Error(CqlErrorCode.Invalid, "bad"));
        await using var connection = await Open(server, Settings());
        var e = await Assert.ThrowsAsync<CqlServerException>(() => connection.RequestAsync(Query("x"), TimeSpan.FromSeconds(5)));
        Assert.Equal((CqlErrorCode.Invalid, "bad", server.Address), (e.Code, e.ServerMessage, e.Host));
    }

    [Fact]
    public async Task Startup_asking_for_authentication_without_credentials_fails_clearly_and_with_them_sends_sasl_plain()
    {
        await using var server = new ScriptedCqlServer();
        server.Handler = null;
        var authenticated = false;
        server.Handler = async (c, r) =>
        {
            if (r.Opcode == CqlOpcode.AuthResponse)
            {
                authenticated = r.Body.AsSpan(4).SequenceEqual("\0cassandra\0pw"u8);
                await c.ReplyAsync(r, authenticated ? CqlOpcode.AuthSuccess : CqlOpcode.Error, authenticated ? TestWire.Body(b => b.WriteInt(-1)) : TestWire.Error(CqlErrorCode.BadCredentials, "no"));
            }
        };
        var authServer = new AuthenticatingServer(server);
        var e = await Assert.ThrowsAsync<CqlException>(() => Open(server, Settings()));
        Assert.Contains("Username", e.Message, StringComparison.Ordinal);

        await using var connection = await Open(server, Settings() with { Username = "cassandra", Password = "pw" });
        Assert.True(authenticated);
        GC.KeepAlive(authServer);
    }

    /// <summary>Turns the scripted server's READY to STARTUP into AUTHENTICATE.</summary>
    private sealed class AuthenticatingServer
    {
        public AuthenticatingServer(ScriptedCqlServer server) => server.AuthenticateWith = "org.apache.cassandra.auth.PasswordAuthenticator";
    }
}
