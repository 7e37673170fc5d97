using System.Diagnostics;
using Gateway.Protocol;
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
