using System.Diagnostics;
using Gateway.Protocol;
using Gateway.TestUtilities;
using static Gateway.Client.Tests.TestHelpers;

namespace Gateway.Client.Tests;

/// <summary>Runs the console tool as a child process against the scripted server.</summary>
public sealed class ChatCliTests
{
    [Fact]
    public async Task Piped_lines_are_sent_messages_printed_and_the_tool_exits_after_the_acks()
    {
        await using var server = await ScriptedServer.StartAsync();
        using var cli = StartCli("--url", server.Endpoint.ToString(), "--token", "cli-token", "--chat", "general", "--after", "5");
        try
        {
            await RunPipedSessionAsync(server, cli);
        }
        finally
        {
            if (!cli.HasExited)
            {
                cli.Kill(entireProcessTree: true); // a failed assertion must not leave the tool running
            }
        }
    }

    private static async Task RunPipedSessionAsync(ScriptedServer server, Process cli)
    {
        var stdout = cli.StandardOutput.ReadToEndAsync();
        var stderr = cli.StandardError.ReadToEndAsync();

        var conn = await server.AcceptAsync();
        Assert.Equal("Bearer cli-token", conn.Authorization);
        var subscribe = await conn.ReceiveAsync();
        Assert.Equal([new ChatCursor("general", 5)], subscribe.Cursors);
        await conn.SendAsync(Ok(subscribe, headSeq: 6), Msg("general", 6, "six ✓"), new CaughtUpFrame("general", 6));

        await cli.StandardInput.WriteLineAsync("hello there");
        await cli.StandardInput.WriteLineAsync("/history 2");
        cli.StandardInput.Close();

        var send = await conn.ReceiveAsync();
        Assert.Equal((FrameType.Send, "general", "text/plain", "hello there"), (send.Type, send.ChatId, send.ContentType, send.Text));
        await conn.SendAsync(new SendAckFrame(send.RequestId, "general", 7, "m7", 0, false));
        var history = await conn.ReceiveAsync();
        Assert.Equal((FrameType.History, "general", 2U), (history.Type, history.ChatId, history.Limit));
        await conn.SendAsync(new HistoryPageFrame(history.RequestId, "general",
            [Msg("general", 5, "five").Message, Msg("general", 4, "four").Message], HasMore: true));

        await cli.WaitForExitAsync().WaitAsync(TestTimeout);
        var output = await stdout.WaitAsync(TestTimeout);
        var errors = await stderr.WaitAsync(TestTimeout);
        Assert.True(cli.ExitCode == 0, $"exit {cli.ExitCode}; stderr: {errors}");
        Assert.Contains("[general #6] bob: six ✓", output, StringComparison.Ordinal);
        var four = output.IndexOf("[general #4] bob: four", StringComparison.Ordinal);
        var five = output.IndexOf("[general #5] bob: five", StringComparison.Ordinal);
        Assert.True(four >= 0 && five > four, "history printed oldest first: " + output);
        Assert.Contains("sent #7", errors, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Typing_is_printed_and_a_token_refresh_and_a_drain_are_handled_without_losing_a_line()
    {
        await using var server = await ScriptedServer.StartAsync();
        var dir = Directory.CreateTempSubdirectory("chatcli-");
        var tokenFile = Path.Combine(dir.FullName, "token");
        await File.WriteAllTextAsync(tokenFile, "file-tok-1\n");
        using var cli = StartCli("--url", server.Endpoint.ToString(), "--token-file", tokenFile, "--chat", "general");
        try
        {
            await RunDrainSessionAsync(server, cli, tokenFile);
        }
        finally
        {
            if (!cli.HasExited)
            {
                cli.Kill(entireProcessTree: true);
            }

            dir.Delete(recursive: true);
        }
    }

    private static async Task RunDrainSessionAsync(ScriptedServer server, Process cli, string tokenFile)
    {
        var stdout = cli.StandardOutput.ReadToEndAsync();
        var errors = new System.Text.StringBuilder();
        var stderr = Task.Run(async () =>
        {
            while (await cli.StandardError.ReadLineAsync() is { } line)
            {
                lock (errors)
                {
                    errors.AppendLine(line);
                }
            }
        });
        bool ErrorsContain(string text)
        {
            lock (errors)
            {
                return errors.ToString().Contains(text, StringComparison.Ordinal);
            }
        }

        var conn1 = await server.AcceptAsync();
        Assert.Equal("Bearer file-tok-1", conn1.Authorization);
        var subscribe = await conn1.ReceiveAsync();
        await conn1.SendAsync(Ok(subscribe, headSeq: 1), Msg("general", 1, "one"), new CaughtUpFrame("general", 1));
        await conn1.SendAsync(new UserTypingFrame("general", "bob"));
        await Poll.UntilAsync(() => ErrorsContain("(general: bob is typing…)"), "the typing notice on stderr");

        // The token file was rotated; the expiry notice makes the library read it and refresh in place.
        await File.WriteAllTextAsync(tokenFile, "file-tok-2");
        await conn1.SendAsync(new TokenExpiringFrame(1_800_000_060_000, 1_800_000_090_000));
        var refresh = await conn1.ReceiveAsync();
        Assert.Equal((FrameType.RefreshToken, "file-tok-2"), (refresh.Type, refresh.Token));
        await conn1.SendAsync(new TokenRefreshedFrame(refresh.RequestId, 1_800_003_600_000));

        await conn1.SendAsync(new DrainFrame(0, "server draining"));
        Assert.Equal(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, await conn1.ReceiveCloseAsync());
        await conn1.CloseAsync(CloseCodes.Normal);

        var conn2 = await server.AcceptAsync();
        Assert.Equal("Bearer file-tok-2", conn2.Authorization);
        var resubscribe = await conn2.ReceiveAsync();
        Assert.Equal([new ChatCursor("general", 1)], resubscribe.Cursors);
        await conn2.SendAsync(Ok(resubscribe, headSeq: 1), new CaughtUpFrame("general", 1));

        await cli.StandardInput.WriteLineAsync("after the drain");
        cli.StandardInput.Close();
        var send = await conn2.ReceiveAsync();
        Assert.Equal((FrameType.Send, "after the drain"), (send.Type, send.Text));
        await conn2.SendAsync(new SendAckFrame(send.RequestId, "general", 2, "m2", 0, false));

        await cli.WaitForExitAsync().WaitAsync(TestTimeout);
        var output = await stdout.WaitAsync(TestTimeout);
        await stderr.WaitAsync(TestTimeout);
        Assert.True(cli.ExitCode == 0, $"exit {cli.ExitCode}; stderr: {errors}");
        Assert.Contains("[general #1] bob: one", output, StringComparison.Ordinal);
        Assert.True(ErrorsContain("sent #2"), "stderr: " + errors);
    }

    [Fact]
    public async Task Help_prints_usage_and_bad_arguments_exit_with_2()
    {
        using (var help = StartCli("--help"))
        {
            var output = await help.StandardOutput.ReadToEndAsync().WaitAsync(TestTimeout);
            await help.WaitForExitAsync().WaitAsync(TestTimeout);
            Assert.Equal(0, help.ExitCode);
            Assert.Contains("--chat <chatId>", output, StringComparison.Ordinal);
        }

        using var bad = StartCli("--chat", "general", "--after", "minus-one", "--token", "t");
        var errors = await bad.StandardError.ReadToEndAsync().WaitAsync(TestTimeout);
        await bad.WaitForExitAsync().WaitAsync(TestTimeout);
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--after", errors, StringComparison.Ordinal);
    }

    private static Process StartCli(params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "Gateway.ChatCli.dll");
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = System.Text.Encoding.UTF8,
            StandardErrorEncoding = System.Text.Encoding.UTF8,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(dll);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment.Remove("CHATGW_TOKEN");
        return Process.Start(start) ?? throw new InvalidOperationException("The CLI did not start.");
    }
}
