using System.Diagnostics;
using System.Globalization;

namespace Gateway.TestUtilities;

/// <summary>One sample of a Prometheus text exposition: <c>name{labels} value</c>.</summary>
public sealed record PromSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

/// <summary>
/// Reads the Prometheus text format (what <c>GET /metrics</c> serves) well enough for assertions: one sample per line,
/// label values unescaped. Not a validator: <c>promtool check metrics</c> is (<see cref="PromtoolCheckAsync"/>).
/// </summary>
public static class PrometheusText
{
    /// <summary>Every sample in <paramref name="text"/>.</summary>
    public static List<PromSample> Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var samples = new List<PromSample>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            string name;
            int rest;
            var brace = line.IndexOf('{', StringComparison.Ordinal);
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            if (brace >= 0 && (space < 0 || brace < space))
            {
                name = line[..brace];
                var i = brace + 1;
                while (line[i] != '}')
                {
                    var eq = line.IndexOf('=', i);
                    var key = line[i..eq].Trim(',', ' ');
                    var value = new System.Text.StringBuilder();
                    var j = eq + 2; // after ="
                    for (; line[j] != '"'; j++)
                    {
                        if (line[j] == '\\')
                        {
                            j++;
                            value.Append(line[j] == 'n' ? '\n' : line[j]);
                        }
                        else
                        {
                            value.Append(line[j]);
                        }
                    }

                    labels[key] = value.ToString();
                    i = j + 1;
                    if (line[i] == ',')
                    {
                        i++;
                    }
                }

                rest = i + 1;
            }
            else
            {
                name = line[..space];
                rest = space;
            }

            var fields = line[rest..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var number = fields[0] switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                "NaN" => double.NaN,
                var v => double.Parse(v, NumberStyles.Float, CultureInfo.InvariantCulture),
            };
            samples.Add(new PromSample(name, labels, number));
        }

        return samples;
    }

    /// <summary>The sum of every sample named <paramref name="name"/> whose labels include <paramref name="labels"/>
    /// (pairs of name and value); null when there is no such sample.</summary>
    public static double? Sum(IEnumerable<PromSample> samples, string name, params (string Name, string Value)[] labels)
    {
        double? sum = null;
        foreach (var s in samples)
        {
            if (s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Name, out var v) && v == l.Value))
            {
                sum = (sum ?? 0) + s.Value;
            }
        }

        return sum;
    }

    /// <summary>Runs <c>promtool check metrics</c> on <paramref name="text"/>: (exit code, what it printed). Fails the test
    /// with a clear message when promtool is not installed (Debian package <c>prometheus</c>; <c>./test.sh</c> installs it).</summary>
    public static async Task<(int ExitCode, string Output)> PromtoolCheckAsync(string text)
    {
        var promtool = FindBinary("promtool");
        var psi = new ProcessStartInfo(promtool, "check metrics")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(psi) ?? throw new InvalidOperationException("promtool did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(text);
        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary>The path of a binary of the Debian package <c>prometheus</c> (<c>prometheus</c>, <c>promtool</c>); fails the
    /// test with the install hint when it is missing, never skips it.</summary>
    public static string FindBinary(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/bin").Append("/usr/local/bin"))
        {
            var path = Path.Combine(dir, name);
            if (dir.Length > 0 && File.Exists(path))
            {
                return path;
            }
        }

        throw new Xunit.Sdk.XunitException(
            $"'{name}' is not installed: it comes with the Debian package 'prometheus' (apt-get install -y prometheus; ./test.sh installs it when missing)");
    }
}
