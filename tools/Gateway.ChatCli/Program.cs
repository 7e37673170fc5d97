using System.Globalization;
using System.Text;
using System.Threading.Channels;
using Gateway.Client;
using Gateway.Protocol;

namespace Gateway.ChatCli;

/// <summary>Interactive console chat client for the README walk-through.</summary>
internal static class Program
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static async Task<int> Main(string[] args)
    {
        var parsed = CliArguments.Parse(args, out var error);
        if (parsed is null)
        {
            await Console.Error.WriteLineAsync(error);
            await Console.Error.WriteLineAsync("Run with --help for usage.");
            return 2;
        }

        if (parsed.Help)
        {
            Console.WriteLine(CliArguments.Usage);
            return 0;
        }

        Console.OutputEncoding = Encoding.UTF8;
        using var quit = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true; // exit through the normal path so the socket is closed properly
            quit.Cancel();
        };

        try
        {
            return await RunAsync(parsed, quit);
        }
        catch (OperationCanceledException) when (quit.IsCancellationRequested)
        {
            return 0;
        }
        catch (Exception e) when (e is ChatClientException or TimeoutException or System.Net.WebSockets.WebSocketException
            or IOException or InvalidDataException or UnauthorizedAccessException)
        {
            await Console.Error.WriteLineAsync("error: " + e.Message);
            return 1;
        }
    }

    private static async Task<int> RunAsync(CliArguments args, CancellationTokenSource quit)
    {
        await using var client = new ChatClient(new ChatClientOptions
        {
            Endpoint = args.Url,
            Token = args.TokenFile is null ? args.Token : null,
            TokenProvider = args.TokenFile is { } path ? ct => ReadTokenFileAsync(path, ct) : null,
            TokenInQuery = args.TokenInQuery,
            Log = args.Verbose ? message => Console.Error.WriteLine("· " + message) : null,
        });
        client.ConnectionStateChanged += (_, e) =>
        {
            if (e.State is ChatConnectionState.Reconnecting || (e.State is ChatConnectionState.Closed && e.Error is not null))
            {
                Console.Error.WriteLine($"({e.State.ToString().ToLowerInvariant()}{(e.CloseStatus is { } c ? ", close " + c : "")})");
            }
        };

        await client.ConnectAsync(quit.Token);
        var hello = client.Hello!;
        await Console.Error.WriteLineAsync($"connected to {args.Url} as {hello.UserId} (tenant {hello.TenantId}, session {hello.SessionId})");

        var oldest = new Dictionary<string, ulong>(StringComparer.Ordinal);
        if (!await SubscribeAsync(client, args.Chats, args.After, quit.Token))
        {
            return 1;
        }

        var printing = PrintEventsAsync(client, oldest, quit);
        var lines = StartStdinReader();
        var current = args.Chats[0];
        while (true)
        {
            string line;
            try
            {
                if (!await lines.WaitToReadAsync(quit.Token) || !lines.TryRead(out line!))
                {
                    break; // stdin closed: every line was sent and acknowledged
                }
            }
            catch (OperationCanceledException)
            {
                break;
            }

            if (line.Length == 0)
            {
                continue;
            }

            if (line == "/quit")
            {
                break;
            }

            if (line.StartsWith("/history", StringComparison.Ordinal))
            {
                await PrintHistoryAsync(client, current, line, oldest, quit.Token);
                continue;
            }

            if (line.StartsWith("/chat ", StringComparison.Ordinal))
            {
                var chat = line[6..].Trim();
                if (client.GetCursor(chat) is null && !await SubscribeAsync(client, [chat], 0, quit.Token))
                {
                    continue;
                }

                current = chat;
                await Console.Error.WriteLineAsync($"(now sending to {current})");
                continue;
            }

            try
            {
                var ack = await client.SendTextAsync(current, line, quit.Token);
                await Console.Error.WriteLineAsync($"  (sent #{ack.Seq}{(ack.Duplicate ? ", duplicate" : "")})");
            }
            catch (ChatClientException e)
            {
                await Console.Error.WriteLineAsync($"not sent: {e.Code}: {e.Message}");
            }
        }

        await quit.CancelAsync();
        return await printing;
    }

    private static async Task<bool> SubscribeAsync(ChatClient client, IReadOnlyList<string> chats, ulong after, CancellationToken ct)
    {
        var subscribed = await client.SubscribeAsync(chats.Select(c => new ChatCursor(c, after)), ct);
        var ok = true;
        foreach (var result in subscribed.Results)
        {
            if (result.Code != ErrorCode.None)
            {
                await Console.Error.WriteLineAsync($"cannot join {result.ChatId}: {result.Code}");
                ok = false;
            }
        }

        return ok;
    }

    /// <summary>Prints events until quit; returns the exit code (1 when the client ended for good).</summary>
    private static async Task<int> PrintEventsAsync(ChatClient client, Dictionary<string, ulong> oldest, CancellationTokenSource quit)
    {
        try
        {
            await foreach (var frame in client.ReadEventsAsync(quit.Token))
            {
                switch (frame)
                {
                    case MessageFrame m:
                        lock (oldest)
                        {
                            if (!oldest.TryGetValue(m.ChatId, out var low) || m.Message.Seq < low)
                            {
                                oldest[m.ChatId] = m.Message.Seq;
                            }
                        }

                        Console.WriteLine(Format(m.ChatId, m.Message));
                        break;
                    case CaughtUpFrame c:
                        await Console.Error.WriteLineAsync($"({c.ChatId}: caught up at #{c.Seq})");
                        break;
                    case RevokedFrame r:
                        await Console.Error.WriteLineAsync($"({r.ChatId}: subscription ended: {r.Code} {r.Message})");
                        break;
                    case UserTypingFrame t:
                        await Console.Error.WriteLineAsync($"({t.ChatId}: {t.UserId} is typing…)");
                        break;
                }
            }

            return 0;
        }
        catch (OperationCanceledException) when (quit.IsCancellationRequested)
        {
            return 0;
        }
        catch (ChatClientException e)
        {
            await Console.Error.WriteLineAsync("disconnected: " + e.Message);
            await quit.CancelAsync(); // stop the input loop too
            return 1;
        }
    }

    /// <summary>The token provider of <c>--token-file</c>: the file's trimmed contents, read anew on every call.</summary>
    private static async ValueTask<string> ReadTokenFileAsync(string path, CancellationToken ct)
    {
        var token = (await File.ReadAllTextAsync(path, ct)).Trim();
        return token.Length > 0 ? token : throw new InvalidDataException($"The token file {path} is empty.");
    }

    private static async Task PrintHistoryAsync(ChatClient client, string chat, string command, Dictionary<string, ulong> oldest, CancellationToken ct)
    {
        var arg = command["/history".Length..].Trim();
        var limit = 20;
        if (arg.Length > 0 && (!int.TryParse(arg, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit < 1))
        {
            await Console.Error.WriteLineAsync("usage: /history N");
            return;
        }

        limit = Math.Min(limit, ProtocolConstants.MaxHistoryPage);
        ulong before;
        lock (oldest)
        {
            before = oldest.TryGetValue(chat, out var low) ? low : 0; // 0: from the newest
        }

        if (before == 1)
        {
            await Console.Error.WriteLineAsync("(no older messages)");
            return;
        }

        try
        {
            var page = await client.GetHistoryAsync(chat, before, limit, ct);
            foreach (var message in page.Messages.OrderBy(m => m.Seq))
            {
                Console.WriteLine(Format(chat, message));
            }

            if (page.Messages.Count > 0)
            {
                lock (oldest)
                {
                    oldest[chat] = page.Messages.Min(m => m.Seq);
                }
            }

            await Console.Error.WriteLineAsync(page.HasMore ? "(more: /history again)" : "(start of chat)");
        }
        catch (Exception e) when (e is ChatClientException or TimeoutException)
        {
            await Console.Error.WriteLineAsync("history failed: " + e.Message);
        }
    }

    private static string Format(string chatId, in MessageFields m)
    {
        string body;
        if (m.ContentType.StartsWith("text/", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                body = StrictUtf8.GetString(m.Content.Span);
            }
            catch (DecoderFallbackException)
            {
                body = $"<{m.ContentType}, {m.Content.Length} bytes, not valid UTF-8>";
            }
        }
        else
        {
            body = $"<{m.ContentType}, {m.Content.Length} bytes>";
        }

        return $"[{chatId} #{m.Seq}] {m.SenderId}: {body}";
    }

    /// <summary>
    /// Reads stdin on a dedicated thread: Console.In's ReadLineAsync blocks and ignores cancellation, so it must
    /// not run on the main loop. A small bounded channel keeps piped input from being read far ahead of the sends.
    /// </summary>
    private static ChannelReader<string> StartStdinReader()
    {
        var channel = Channel.CreateBounded<string>(new BoundedChannelOptions(16) { SingleReader = true, SingleWriter = true });
        var thread = new Thread(() =>
        {
            try
            {
                while (Console.In.ReadLine() is { } line)
                {
                    channel.Writer.WriteAsync(line).AsTask().GetAwaiter().GetResult();
                }
            }
            finally
            {
                channel.Writer.TryComplete();
            }
        })
        {
            IsBackground = true, // Ctrl+C must not wait for a blocked ReadLine
            Name = "stdin",
        };
        thread.Start();
        return channel.Reader;
    }
}
