using System.Text.RegularExpressions;

namespace Gateway.Protocol.Tests;

/// <summary>PROTOCOL.md and the vectors' README cover every frame type, error code and vector file the codec has.</summary>
public partial class SpecCoverageTests
{
    private static readonly Lazy<string> Spec = new(() => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "PROTOCOL.md")));

    [Fact]
    public void Every_frame_type_has_a_section_and_a_row_in_the_tag_table()
    {
        foreach (var type in Enum.GetValues<FrameType>())
        {
            var tag = (int)type;
            Assert.Contains($"#### {type} ({tag})\n", Spec.Value, StringComparison.Ordinal);
            Assert.Matches(new Regex($@"^[^\n]*\| {tag} \| {type} \|", RegexOptions.Multiline), Spec.Value);

            // The section's layout line starts with the tag: [tag, ...
            Assert.Contains($"`[{tag}, ", Spec.Value, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Every_error_code_is_in_the_error_table()
    {
        foreach (var code in Enum.GetValues<ErrorCode>())
        {
            Assert.Contains($"\n| {(int)code} | {code} | ", Spec.Value, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Every_close_code_is_in_the_close_table()
    {
        foreach (var field in typeof(CloseCodes).GetFields())
        {
            var code = (ushort)field.GetValue(null)!;
            Assert.Contains($"\n| {code} | {field.Name} | ", Spec.Value, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Every_vector_file_is_named_in_the_spec_and_in_the_vectors_readme()
    {
        var readme = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "vectors", "README.md"));
        var files = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "vectors"), "*.json").Select(Path.GetFileName).ToArray();
        Assert.NotEmpty(files);
        foreach (var file in files)
        {
            Assert.Contains($"| `{file}` |", readme, StringComparison.Ordinal);
            if (file is not ("server-unknown.json" or "client-rejected.json"))
            {
                Assert.Contains($"`{file}`", Spec.Value, StringComparison.Ordinal);
            }
        }
    }
}
