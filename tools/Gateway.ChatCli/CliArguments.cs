using System.Globalization;

namespace Gateway.ChatCli;

/// <summary>Command-line arguments, parsed by hand (no argument-parsing package).</summary>
internal sealed class CliArguments
{
    public const string Usage = """
        Usage: Gateway.ChatCli (--token <jwt> | --token-file <path>) --chat <chatId> [--chat <chatId> ...] [options]

        Connects to a chatgw.v1 gateway, subscribes, prints every message as
        "[chat #seq] sender: text" and sends each line read from stdin as text/plain.

        Options:
          --url <ws-url>     Gateway endpoint (default ws://127.0.0.1:8080/v1/ws)
          --token <jwt>      Bearer token (or set CHATGW_TOKEN)
          --token-file <path>
                             Read the token from this file before every connect and when the
                             server says it expires (refreshed in place); another process can
                             rotate the file. Takes precedence over --token.
          --chat <chatId>    Chat to join; repeat for several. Lines go to the first (see /chat).
          --after <seq>      Replay messages after this seq (default 0: the whole history)
          --token-in-query   Send the token as ?access_token= instead of an Authorization header
          --verbose          Print client diagnostics to stderr
          -h, --help         Show this help

        While running:
          /history N         Print N older messages of the current chat
          /chat <chatId>     Switch the current chat (subscribing to it if needed)
          /quit              Exit (Ctrl+C works too)

        Other members typing show as "(chat: user is typing…)" on stderr. A server
        that drains or a token that expires is handled without losing a line.

        With piped stdin, every line is sent, the tool waits for the acks, then exits.
        """;

    public Uri Url { get; private set; } = new("ws://127.0.0.1:8080/v1/ws");

    public string? Token { get; private set; }

    public string? TokenFile { get; private set; }

    public List<string> Chats { get; } = [];

    public ulong After { get; private set; }

    public bool TokenInQuery { get; private set; }

    public bool Verbose { get; private set; }

    public bool Help { get; private set; }

    /// <summary>Parses <paramref name="args"/>; returns null and sets <paramref name="error"/> when they are wrong.</summary>
    public static CliArguments? Parse(string[] args, out string? error)
    {
        var result = new CliArguments { Token = Environment.GetEnvironmentVariable("CHATGW_TOKEN") };
        error = null;
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            string Value()
            {
                if (i + 1 >= args.Length)
                {
                    throw new FormatException($"{arg} needs a value.");
                }

                return args[++i];
            }

            try
            {
                switch (arg)
                {
                    case "-h" or "--help" or "-?":
                        result.Help = true;
                        break;
                    case "--url":
                        var url = Value();
                        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("ws" or "wss"))
                        {
                            throw new FormatException($"--url must be a ws:// or wss:// URL, not '{url}'.");
                        }

                        result.Url = uri;
                        break;
                    case "--token":
                        result.Token = Value();
                        break;
                    case "--token-file":
                        result.TokenFile = Value();
                        break;
                    case "--chat":
                        result.Chats.Add(Value());
                        break;
                    case "--after":
                        var after = Value();
                        if (!ulong.TryParse(after, NumberStyles.None, CultureInfo.InvariantCulture, out var seq))
                        {
                            throw new FormatException($"--after must be a non-negative integer, not '{after}'.");
                        }

                        result.After = seq;
                        break;
                    case "--token-in-query":
                        result.TokenInQuery = true;
                        break;
                    case "--verbose":
                        result.Verbose = true;
                        break;
                    default:
                        throw new FormatException($"Unknown argument '{arg}'.");
                }
            }
            catch (FormatException e)
            {
                error = e.Message;
                return null;
            }
        }

        if (result.Help)
        {
            return result;
        }

        if (string.IsNullOrEmpty(result.Token) && string.IsNullOrEmpty(result.TokenFile))
        {
            error = "--token or --token-file is required (or set CHATGW_TOKEN).";
            return null;
        }

        if (result.Chats.Count == 0)
        {
            error = "At least one --chat is required.";
            return null;
        }

        return result;
    }
}
