namespace Gateway.Fuzz;

/// <summary>Finds the committed fuzz inputs (seeds and regressions) for replay, from the harness and from the tests.</summary>
public static class FuzzInputs
{
    /// <summary>The files named, plus every file under the folders named (recursively, sorted, hidden files skipped).</summary>
    public static IEnumerable<string> Expand(IEnumerable<string> paths)
    {
        foreach (var path in paths)
        {
            if (Directory.Exists(path))
            {
                foreach (var file in Directory.GetFiles(path, "*", SearchOption.AllDirectories)
                    .Where(f => !Path.GetFileName(f).StartsWith('.'))
                    .Order(StringComparer.Ordinal))
                {
                    yield return file;
                }
            }
            else if (File.Exists(path))
            {
                yield return path;
            }
            else
            {
                throw new FileNotFoundException("No such input file or folder.", path);
            }
        }
    }

    /// <summary>
    /// The repository's <c>fuzz/</c> folder, found by walking up from <paramref name="start"/> (a test's output folder
    /// sits several levels below it).
    /// </summary>
    public static string FindFuzzRoot(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "fuzz", "seeds");
            if (Directory.Exists(candidate))
            {
                return Path.Combine(dir.FullName, "fuzz");
            }
        }

        throw new DirectoryNotFoundException($"No fuzz/seeds folder above {start}.");
    }

    /// <summary>Every committed input of one target: <c>fuzz/seeds/&lt;target&gt;</c> and <c>fuzz/regressions/&lt;target&gt;</c>.</summary>
    public static IReadOnlyList<string> Committed(string fuzzRoot, string target)
    {
        var folders = new[] { Path.Combine(fuzzRoot, "seeds", target), Path.Combine(fuzzRoot, "regressions", target) }
            .Where(Directory.Exists);
        return Expand(folders).ToList();
    }

    /// <summary>The committed inputs of one target as paths relative to <paramref name="fuzzRoot"/> with '/' separators
    /// (e.g. <c>seeds/handshake/valid</c>): stable, readable names for test cases.</summary>
    public static IEnumerable<string> CommittedRelative(string fuzzRoot, string target) =>
        Committed(fuzzRoot, target).Select(file => Path.GetRelativePath(fuzzRoot, file).Replace('\\', '/'));
}
