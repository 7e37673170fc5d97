using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Gateway.Protocol.Tests;

/// <summary>The worked examples in PROTOCOL.md §9 must be real frames, in the direction their lines claim.</summary>
public partial class SpecExampleTests
{
    private static readonly Lazy<string> Example = new(() =>
    {
        var spec = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "PROTOCOL.md"));
        return spec[spec.IndexOf("## 9. Worked example", StringComparison.Ordinal)..];
    });

    [Fact]
    public void Worked_example_hex_decodes_to_the_frames_it_names()
    {
        var frames = Frames(0);
        Assert.Equal(13, frames.Count);
        foreach (var (direction, name, bytes) in frames)
        {
            AssertFrame(direction, name, bytes);
        }

        // The trailing sentence's two frames.
        Assert.Equal(new RevokedFrame("general", ErrorCode.NotMember, "removed"),
            ServerFrame.Decode(new ReadOnlySequence<byte>(Convert.FromHexString("9428a767656e6572616c0aa772656d6f766564"))));
        Assert.Equal(new ErrorFrame(9, ErrorCode.ValidationFailed, "bad"),
            ServerFrame.Decode(new ReadOnlySequence<byte>(Convert.FromHexString("94240914a3626164"))));
        Assert.Contains("`94 28 a7 67656e6572616c 0a a7 72656d6f766564`", Example.Value, StringComparison.Ordinal);
        Assert.Contains("`94 24 09 14 a3 626164`", Example.Value, StringComparison.Ordinal);
    }

    [Fact]
    public void Hardening_example_hex_decodes_to_the_frames_it_names_and_tells_a_consistent_story()
    {
        var frames = Frames(1);
        Assert.Equal(
            ["Typing", "UserTyping", "TokenExpiring", "RefreshToken", "TokenRefreshed", "Error", "Drain"],
            frames.Select(f => f.Name));
        foreach (var (direction, name, bytes) in frames)
        {
            AssertFrame(direction, name, bytes);
        }

        var hello = Assert.IsType<HelloFrame>(Decode(Frames(0)[0].Bytes));
        var expiring = Assert.IsType<TokenExpiringFrame>(Decode(frames[2].Bytes));
        var refreshed = Assert.IsType<TokenRefreshedFrame>(Decode(frames[4].Bytes));
        var error = Assert.IsType<ErrorFrame>(Decode(frames[5].Bytes));
        var drain = Assert.IsType<DrainFrame>(Decode(frames[6].Bytes));

        // TokenExpiring is about the Hello's token and closes after the default grace (30 s).
        Assert.Equal(hello.TokenExpiresAt, expiring.ExpiresAt);
        Assert.Equal(30_000, expiring.CloseAt - expiring.ExpiresAt);

        // The refresh names the connection's user and tenant (else it would get Error 11), TokenRefreshed echoes
        // its requestId and reports its exp in ms, and the token really is HS256 under the vectors' test key.
        Assert.Equal(ReadStatus.Ok, ClientFrameReader.TryRead(new ReadOnlySequence<byte>(frames[3].Bytes), out var refresh));
        Assert.Equal(refresh.RequestId, refreshed.RequestId);
        var token = Encoding.UTF8.GetString(refresh.Token);
        var parts = token.Split('.');
        Assert.Equal(3, parts.Length);
        using var claims = JsonDocument.Parse(Base64Url.DecodeFromChars(parts[1]));
        Assert.Equal(hello.UserId, claims.RootElement.GetProperty("sub").GetString());
        Assert.Equal(hello.TenantId, claims.RootElement.GetProperty("tid").GetString());
        Assert.Equal(claims.RootElement.GetProperty("exp").GetInt64() * 1000, refreshed.ExpiresAt);
        var signature = HMACSHA256.HashData("chatgw-v1-golden-vectors-hs256!!"u8, Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]));
        Assert.Equal(Base64Url.EncodeToString(signature), parts[2]);

        Assert.Equal((ErrorCode.RateLimited, 250u), (error.Code, error.RetryAfterMs));

        // The delay is a draw from the default jitter window [0, 5000] ms, and the prose names it.
        Assert.InRange(drain.ReconnectAfterMs, 0u, 5_000u);
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"{drain.ReconnectAfterMs / 1000.0:0.##} s"), Example.Value, StringComparison.Ordinal);
    }

    private static void AssertFrame(char direction, string name, byte[] bytes)
    {
        if (direction == 'C')
        {
            Assert.Equal(ReadStatus.Ok, ClientFrameReader.TryRead(new ReadOnlySequence<byte>(bytes), out var frame));
            Assert.Equal(name, frame.Type.ToString());
        }
        else
        {
            var frame = Decode(bytes);
            Assert.NotNull(frame);
            Assert.Equal(name, frame.Type.ToString());

            // What the server writes is what the spec shows: decode and write back gives the same bytes.
            var output = new ArrayBufferWriter<byte>();
            frame.WriteTo(output);
            Assert.Equal(Convert.ToHexStringLower(bytes), Convert.ToHexStringLower(output.WrittenSpan));
        }
    }

    private static ServerFrame? Decode(byte[] bytes) => ServerFrame.Decode(new ReadOnlySequence<byte>(bytes));

    // The frames of the n-th fenced block of §9: a "C Name …" or "S Name …" line followed by indented hex lines.
    private static List<(char Direction, string Name, byte[] Bytes)> Frames(int block)
    {
        var blocks = Example.Value.Split("```");
        Assert.True(blocks.Length > (2 * block) + 1, $"§9 has no code block {block}");
        var frames = new List<(char Direction, string Name, string Hex)>();
        foreach (var line in blocks[(2 * block) + 1].Split('\n'))
        {
            var header = HeaderLine().Match(line);
            if (header.Success)
            {
                frames.Add((header.Groups[1].Value[0], header.Groups[2].Value, ""));
            }
            else if (line.StartsWith("  ", StringComparison.Ordinal) && frames.Count > 0)
            {
                var f = frames[^1];
                frames[^1] = f with { Hex = f.Hex + line.Replace(" ", "", StringComparison.Ordinal) };
            }
        }

        return frames.Select(f => (f.Direction, f.Name, Convert.FromHexString(f.Hex))).ToList();
    }

    [GeneratedRegex(@"^([CS]) (\w+) ")]
    private static partial Regex HeaderLine();
}
