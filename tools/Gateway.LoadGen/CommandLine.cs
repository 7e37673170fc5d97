using System.Globalization;

namespace Gateway.LoadGen;

/// <summary><c>--name value</c> pairs (a name may repeat) and bare flags, after a leading command word.</summary>
internal sealed class CommandLine
{
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _flags = new(StringComparer.Ordinal);

    private static readonly HashSet<string> FlagNames = ["--no-bind", "--quiet"];

    public CommandLine(IEnumerable<string> args)
    {
        var list = args.ToList();
        for (var i = 0; i < list.Count; i++)
        {
            var a = list[i];
            if (!a.StartsWith("--", StringComparison.Ordinal))
            {
                Positional.Add(a);
            }
            else if (FlagNames.Contains(a))
            {
                _flags.Add(a);
            }
            else if (a.Contains('=', StringComparison.Ordinal) && !a.StartsWith("--server-arg", StringComparison.Ordinal))
            {
                var eq = a.IndexOf('=', StringComparison.Ordinal);
                Add(a[..eq], a[(eq + 1)..]);
            }
            else if (i + 1 < list.Count)
            {
                Add(a, list[++i]);
            }
            else
            {
                throw new ArgumentException($"{a} needs a value");
            }
        }
    }

    public List<string> Positional { get; } = [];

    public bool Flag(string name) => _flags.Contains(name);

    public string? Get(string name) => _values.TryGetValue(name, out var v) ? v[^1] : null;

    public IReadOnlyList<string> All(string name) => _values.TryGetValue(name, out var v) ? v : [];

    public string Get(string name, string fallback) => Get(name) ?? fallback;

    public int Int(string name, int fallback) => Get(name) is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : fallback;

    public double Double(string name, double fallback) => Get(name) is { } s ? double.Parse(s, CultureInfo.InvariantCulture) : fallback;

    public int? OptionalInt(string name) => Get(name) is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : null;

    public int[] Ints(string name, int[] fallback) =>
        Get(name) is { } s ? [.. s.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(x => int.Parse(x, CultureInfo.InvariantCulture))] : fallback;

    private void Add(string name, string value)
    {
        if (!_values.TryGetValue(name, out var list))
        {
            list = [];
            _values[name] = list;
        }

        list.Add(value);
    }
}
