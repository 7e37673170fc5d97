using System.Buffers;
using System.Text.RegularExpressions;

namespace Gateway.Protocol.Tests;

/// <summary>The worked example in PROTOCOL.md §9 must be real frames, in the direction its lines claim.</summary>
public partial class SpecExampleTests
{
    [Fact]
    public void Worked_example_hex_decodes_to_the_frames_it_names()
    {
        var spec = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "PROTOCOL.md"));
        var example = spec[spec.IndexOf("## 9. Worked example", StringComparison.Ordinal)..];
        var block = example.Split("```")[1];

        // A frame is a "C Name …" or "S Name …" line followed by indented hex lines.
        var frames = new List<(char Direction, string Name, string Hex)>();
        foreach (var line in block.Split('\n'))
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

        Assert.Equal(13, frames.Count);
        foreach (var (direction, name, hex) in frames)
        {
            var payload = new ReadOnlySequence<byte>(Convert.FromHexString(hex));
            if (direction == 'C')
            {
                Assert.Equal(ReadStatus.Ok, ClientFrameReader.TryRead(payload, out var frame));
                Assert.Equal(name, frame.Type.ToString());
            }
            else
            {
                var frame = ServerFrame.Decode(payload);
                Assert.NotNull(frame);
                Assert.Equal(name, frame.Type.ToString());
            }
        }

        // The trailing sentence's two frames.
        Assert.Equal(new RevokedFrame("general", ErrorCode.NotMember, "removed"),
            ServerFrame.Decode(new ReadOnlySequence<byte>(Convert.FromHexString("9428a767656e6572616c0aa772656d6f766564"))));
        Assert.Equal(new ErrorFrame(9, ErrorCode.ValidationFailed, "bad"),
            ServerFrame.Decode(new ReadOnlySequence<byte>(Convert.FromHexString("94240914a3626164"))));
        Assert.Contains("`94 28 a7 67656e6572616c 0a a7 72656d6f766564`", example, StringComparison.Ordinal);
        Assert.Contains("`94 24 09 14 a3 626164`", example, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"^([CS]) (\w+) ")]
    private static partial Regex HeaderLine();
}
