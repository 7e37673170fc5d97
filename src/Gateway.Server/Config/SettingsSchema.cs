using System.ComponentModel;
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Gateway.Nats;

namespace Gateway.Server.Config;

/// <summary>
/// The tree of our configuration sections (<c>Gateway</c>, <c>Gateway:Auth</c>, <c>Nats</c>, <c>Store</c>) read by reflection from the
/// options types, so that the unknown-key check, the settings table of <c>--help</c> and the options classes cannot
/// disagree: a new property is a new setting everywhere.
/// </summary>
internal static partial class SettingsSchema
{
    /// <summary>One node: a section (<see cref="Children"/>), a list (<see cref="Element"/>) or a value.</summary>
    internal sealed class Node(string path, Type type)
    {
        public string Path { get; } = path;

        /// <summary>The property's type (for lists, the list's type).</summary>
        public Type Type { get; } = type;

        public Dictionary<string, Node> Children { get; } = new(StringComparer.OrdinalIgnoreCase);

        /// <summary>For a list: the type of its items (each a value).</summary>
        public Type? Element { get; init; }

        public bool IsSection => Element is null && !IsValue(Type);

        public PropertyInfo? Property { get; init; }

        public object? Default { get; init; }

        public bool Secret { get; init; }
    }

    /// <summary>One row of the settings table.</summary>
    internal sealed record Setting(string Path, Type Type, string Default, string Description, bool Secret);

    private static readonly Lazy<Node> LazyRoot = new(BuildRoot);

    /// <summary>The root: children <c>Gateway</c>, <c>Nats</c> and <c>Store</c>.</summary>
    public static Node Root => LazyRoot.Value;

    /// <summary>Every value setting, in declaration order (lists as <c>Name:0</c>, <c>Name:1</c>, …).</summary>
    public static IReadOnlyList<Setting> All()
    {
        var docs = XmlDocs.Load();
        var rows = new List<Setting>();
        Collect(Root, rows, docs);
        return rows;
    }

    /// <summary>Whether a type is bound from one configuration value (not a section or a list).</summary>
    public static bool IsValue(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        return type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal) || type == typeof(TimeSpan) || type == typeof(Uri);
    }

    /// <summary>True when <paramref name="value"/> converts to <paramref name="type"/> as the configuration binder converts it.</summary>
    public static bool Converts(string value, Type type)
    {
        var underlying = Nullable.GetUnderlyingType(type);
        if (underlying is not null)
        {
            if (string.IsNullOrEmpty(value))
            {
                return true;
            }

            type = underlying;
        }

        if (type == typeof(string))
        {
            return true;
        }

        try
        {
            TypeDescriptor.GetConverter(type).ConvertFromInvariantString(value);
            return true;
        }
        catch (Exception e) when (e is FormatException or ArgumentException or NotSupportedException or OverflowException || e.InnerException is FormatException or OverflowException)
        {
            return false;
        }
    }

    /// <summary>What a value of <paramref name="type"/> must look like, for error messages.</summary>
    public static string Describe(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type.IsEnum)
        {
            return "one of " + string.Join(", ", Enum.GetNames(type));
        }

        return Type.GetTypeCode(type) switch
        {
            TypeCode.Boolean => "true or false",
            TypeCode.Int32 => $"a whole number ({int.MinValue}..{int.MaxValue})",
            TypeCode.Int64 => "a whole number",
            TypeCode.Double or TypeCode.Single or TypeCode.Decimal => "a number (e.g. 2.5)",
            _ => "a " + type.Name,
        };
    }

    /// <summary>The valid setting closest to an unknown one (edit distance, case-insensitive), for "did you mean".</summary>
    /// <remarks>An abbreviation (<c>Tls:CertPath</c>) is far from its setting by edit distance but is a subsequence of it:
    /// the shortest setting that contains the unknown key's letters in order wins over edit distance.</remarks>
    public static string Closest(string unknownPath)
    {
        var unknown = unknownPath.ToUpperInvariant();
        var abbreviated = AllPaths(Root).Where(c => IsSubsequence(unknown, c.ToUpperInvariant())).OrderBy(c => c.Length).FirstOrDefault();
        if (abbreviated is not null)
        {
            return abbreviated;
        }

        var best = "";
        var bestDistance = int.MaxValue;
        foreach (var candidate in AllPaths(Root))
        {
            var d = Distance(unknown, candidate.ToUpperInvariant());
            if (d < bestDistance)
            {
                (best, bestDistance) = (candidate, d);
            }
        }

        return best;
    }

    /// <summary>A value shown in a message: secrets only by their length.</summary>
    public static string Show(string path, object? value, bool secret)
    {
        _ = path;
        if (value is null)
        {
            return "(not set)";
        }

        var text = value switch
        {
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => value.ToString() ?? "",
        };
        return secret ? $"(secret, {text.Length} characters)" : text;
    }

    /// <summary>True for properties whose values are never printed.</summary>
    public static bool IsSecret(PropertyInfo property) =>
        property.GetCustomAttribute<SecretSettingAttribute>() is not null || property.Name is "Password" or "Token";

    private static Node BuildRoot()
    {
        var root = new Node("", typeof(object));
        var gateway = Section(GatewayOptions.Section, typeof(GatewayOptions));
        var auth = Section(AuthOptions.Section, typeof(AuthOptions));
        gateway.Children["Auth"] = auth;

        // --role is also accepted as Gateway:Role (environment: Gateway__Role).
        gateway.Children["Role"] = new Node($"{GatewayOptions.Section}:Role", typeof(string)) { Default = "all" };
        root.Children["Gateway"] = gateway;
        root.Children["Nats"] = Section(NatsOptions.Section, typeof(NatsOptions));
        root.Children["Store"] = Section(StoreOptions.Section, typeof(StoreOptions));
        return root;
    }

    private static Node Section(string path, Type type)
    {
        var node = new Node(path, type);
        var defaults = Activator.CreateInstance(type);
        foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (p.SetMethod is not { IsPublic: true } || p.GetIndexParameters().Length > 0)
            {
                continue;
            }

            var childPath = $"{path}:{p.Name}";
            var value = p.GetValue(defaults);
            if (p.PropertyType.IsArray || (p.PropertyType.IsGenericType && p.PropertyType.GetGenericTypeDefinition() == typeof(List<>)))
            {
                var element = p.PropertyType.IsArray ? p.PropertyType.GetElementType()! : p.PropertyType.GetGenericArguments()[0];
                node.Children[p.Name] = new Node(childPath, p.PropertyType) { Element = element, Property = p, Default = value, Secret = IsSecret(p) };
            }
            else if (IsValue(p.PropertyType))
            {
                node.Children[p.Name] = new Node(childPath, p.PropertyType) { Property = p, Default = value, Secret = IsSecret(p) };
            }
            else
            {
                var child = Section(childPath, p.PropertyType);
                node.Children[p.Name] = child;
            }
        }

        return node;
    }

    private static IEnumerable<string> AllPaths(Node node)
    {
        foreach (var child in node.Children.Values)
        {
            if (child.Element is not null)
            {
                yield return child.Path + ":0";
            }
            else if (child.IsSection)
            {
                foreach (var p in AllPaths(child))
                {
                    yield return p;
                }
            }
            else
            {
                yield return child.Path;
            }
        }
    }

    private static void Collect(Node node, List<Setting> rows, XmlDocs docs)
    {
        foreach (var child in node.Children.Values)
        {
            if (child.IsSection)
            {
                Collect(child, rows, docs);
                continue;
            }

            var description = child.Property is { } p ? docs.Summary(p) : "what this process does: all, gateway or writer (also --role)";
            var shown = child.Secret ? "—" : child.Default switch
            {
                null => "—",
                Array { Length: 0 } => "—",
                Array a => string.Join(",", a.Cast<object>()),
                bool b => b ? "true" : "false",
                IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
                var v => v.ToString() ?? "—",
            };
            rows.Add(new Setting(child.Element is null ? child.Path : child.Path + ":0..n", child.Element ?? child.Type, shown, description, child.Secret));
        }
    }

    private static bool IsSubsequence(string part, string whole)
    {
        var i = 0;
        foreach (var c in whole)
        {
            if (i < part.Length && part[i] == c)
            {
                i++;
            }
        }

        return i == part.Length;
    }

    /// <summary>Levenshtein distance.</summary>
    private static int Distance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }

    /// <summary>The <c>summary</c> of each property from the XML documentation files next to the assemblies (built with
    /// the project; a missing file leaves descriptions empty).</summary>
    private sealed partial class XmlDocs
    {
        private readonly Dictionary<string, string> _summaries = new(StringComparer.Ordinal);

        public static XmlDocs Load()
        {
            var docs = new XmlDocs();
            foreach (var assembly in new[] { typeof(GatewayOptions).Assembly, typeof(NatsOptions).Assembly, typeof(Gateway.Storage.Scylla.ScyllaStoreOptions).Assembly })
            {
                var file = System.IO.Path.Combine(AppContext.BaseDirectory, assembly.GetName().Name + ".xml");
                if (!File.Exists(file))
                {
                    continue;
                }

                foreach (var member in XDocument.Load(file).Descendants("member"))
                {
                    if (member.Attribute("name")?.Value is { } name && member.Element("summary") is { } summary)
                    {
                        docs._summaries[name] = Flatten(summary);
                    }
                }
            }

            return docs;
        }

        public string Summary(PropertyInfo p) =>
            _summaries.TryGetValue($"P:{p.DeclaringType!.FullName}.{p.Name}", out var s) ? s : "";

        private static string Flatten(XElement summary)
        {
            var text = new StringBuilder();
            foreach (var node in summary.Nodes())
            {
                text.Append(node switch
                {
                    XText t => t.Value,
                    XElement { Name.LocalName: "see" or "seealso" } e => (e.Attribute("cref")?.Value ?? e.Attribute("langword")?.Value ?? "").Split('.')[^1],
                    XElement { Name.LocalName: "paramref" or "typeparamref" } e => e.Attribute("name")?.Value ?? "",
                    XElement e => e.Value,
                    _ => "",
                });
            }

            return Spaces().Replace(text.ToString(), " ").Trim();
        }

        [GeneratedRegex(@"\s+")]
        private static partial Regex Spaces();
    }
}
