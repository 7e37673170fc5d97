namespace Gateway.Server.Config;

/// <summary>
/// Checks the keys and raw values under our sections against <see cref="SettingsSchema"/> before anything is bound:
/// a key that is no setting (a typo the binder would silently ignore) is an error naming the closest valid setting, and a
/// value the binder could not convert (an exception with no setting name otherwise) is an error naming the setting and
/// what it must look like. Configuration keys are case-insensitive, as the binder treats them.
/// </summary>
internal static class ConfigurationChecker
{
    /// <summary>Top-level sections that people write for ours (the issue's own examples say <c>Auth:SigningKey</c>); keys
    /// under them are reported like typos instead of being ignored.</summary>
    private static readonly string[] Misplaced = ["Auth", "Tls"];

    /// <summary>Appends one message per problem to <paramref name="errors"/>.</summary>
    public static void Check(IConfiguration configuration, List<string> errors)
    {
        foreach (var top in configuration.GetChildren())
        {
            if (SettingsSchema.Root.Children.TryGetValue(top.Key, out var node))
            {
                CheckSection(top, node, errors);
            }
            else if (Misplaced.Contains(top.Key, StringComparer.OrdinalIgnoreCase))
            {
                foreach (var leaf in Leaves(top))
                {
                    Unknown(leaf, errors);
                }
            }
        }
    }

    private static void CheckSection(IConfigurationSection section, SettingsSchema.Node node, List<string> errors)
    {
        if (!string.IsNullOrEmpty(section.Value) && !section.GetChildren().Any())
        {
            errors.Add($"{section.Path}={section.Value} is not valid: {node.Path} is a section; set its settings ({node.Path}:Name=value)");
            return;
        }

        foreach (var child in section.GetChildren())
        {
            if (!node.Children.TryGetValue(child.Key, out var childNode))
            {
                foreach (var leaf in Leaves(child))
                {
                    Unknown(leaf, errors);
                }

                continue;
            }

            if (childNode.IsSection)
            {
                CheckSection(child, childNode, errors);
            }
            else if (childNode.Element is { } element)
            {
                CheckList(child, childNode, element, errors);
            }
            else
            {
                CheckValue(child, childNode.Path, childNode.Type, childNode.Secret, errors);
            }
        }
    }

    private static void CheckList(IConfigurationSection list, SettingsSchema.Node node, Type element, List<string> errors)
    {
        var items = list.GetChildren().ToList();
        if (items.Count == 0 && !string.IsNullOrEmpty(list.Value))
        {
            // Gateway__AllowedOrigins=https://a.example is a common slip: the binder ignores a value on a list.
            errors.Add($"{list.Path}={SettingsSchema.Show(list.Path, list.Value, node.Secret)} is not valid: {node.Path} is a list; set its items as {node.Path}:0, {node.Path}:1, …");
            return;
        }

        foreach (var item in items)
        {
            if (!int.TryParse(item.Key, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _))
            {
                foreach (var leaf in Leaves(item))
                {
                    Unknown(leaf, errors);
                }

                continue;
            }

            CheckValue(item, $"{node.Path}:{item.Key}", element, node.Secret, errors);
        }
    }

    private static void CheckValue(IConfigurationSection value, string path, Type type, bool secret, List<string> errors)
    {
        if (value.GetChildren().Any())
        {
            foreach (var leaf in Leaves(value))
            {
                Unknown(leaf, errors);
            }

            return;
        }

        if (value.Value is { } text && !SettingsSchema.Converts(text, type))
        {
            errors.Add($"{path}={SettingsSchema.Show(path, text, secret)} is not valid: must be {SettingsSchema.Describe(type)}");
        }
    }

    private static void Unknown(IConfigurationSection leaf, List<string> errors) =>
        errors.Add($"{leaf.Path} is not a setting: did you mean {SettingsSchema.Closest(leaf.Path)}? (--help lists every setting)");

    /// <summary>The value-carrying keys at and under <paramref name="section"/>.</summary>
    private static IEnumerable<IConfigurationSection> Leaves(IConfigurationSection section)
    {
        var children = section.GetChildren().ToList();
        if (children.Count == 0)
        {
            yield return section;
            yield break;
        }

        foreach (var child in children)
        {
            foreach (var leaf in Leaves(child))
            {
                yield return leaf;
            }
        }
    }
}
