using System.Text.Json;

namespace Gateway.Protocol.Tests;

/// <summary>One entry of a <c>proto/vectors/*.json</c> file.</summary>
public sealed record GoldenVector(
    string File, string Frame, string Name, string Direction, bool DecodeOnly, byte[] Bytes, JsonElement Decoded, JsonElement Expect)
{
    /// <summary>The id used as a theory argument: <c>file/name</c>.</summary>
    public string Id => File + "/" + Name;

    public bool IsClient => Direction == "client-to-server";

    public bool IsRejected => Frame == "Rejected";

    public override string ToString() => Id;
}

/// <summary>Loads the vector files copied next to the test assembly.</summary>
public static class GoldenVectors
{
    private static readonly Lazy<IReadOnlyDictionary<string, GoldenVector>> All = new(Load);

    public static IReadOnlyDictionary<string, GoldenVector> ById => All.Value;

    public static GoldenVector Get(string id) => All.Value[id];

    /// <summary>Theory data: the ids of the vectors that satisfy <paramref name="filter"/>.</summary>
    public static TheoryData<string> Ids(Func<GoldenVector, bool> filter)
    {
        var data = new TheoryData<string>();
        foreach (var v in All.Value.Values.Where(filter).OrderBy(v => v.Id, StringComparer.Ordinal))
        {
            data.Add(v.Id);
        }

        return data;
    }

    private static Dictionary<string, GoldenVector> Load()
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "vectors");
        var result = new Dictionary<string, GoldenVector>(StringComparer.Ordinal);
        foreach (var path in Directory.GetFiles(dir, "*.json"))
        {
            using var doc = JsonDocument.Parse(System.IO.File.ReadAllBytes(path));
            var root = doc.RootElement;
            var frame = root.GetProperty("frame").GetString()!;
            foreach (var v in root.GetProperty("vectors").EnumerateArray())
            {
                var vector = new GoldenVector(
                    Path.GetFileName(path),
                    frame,
                    v.GetProperty("name").GetString()!,
                    v.GetProperty("direction").GetString()!,
                    v.GetProperty("decodeOnly").GetBoolean(),
                    Convert.FromHexString(v.GetProperty("hex").GetString()!),
                    v.TryGetProperty("decoded", out var d) ? d.Clone() : default,
                    v.TryGetProperty("expect", out var e) ? e.Clone() : default);
                result.Add(vector.Id, vector);
            }
        }

        return result;
    }
}
