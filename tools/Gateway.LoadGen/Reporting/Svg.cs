using System.Globalization;
using System.Net;
using System.Text;

namespace Gateway.LoadGen.Reporting;

/// <summary>A minimal line/scatter chart as SVG: axes, ticks, up to a few series, a legend. No dependencies.</summary>
public static class Svg
{
    private const int Width = 720;
    private const int Height = 400;
    private const int Left = 70;
    private const int Right = 20;
    private const int Top = 40;
    private const int Bottom = 50;
    private static readonly string[] Colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"];

    /// <summary>One named series of (x, y) points.</summary>
    public sealed record Series(string Name, IReadOnlyList<(double X, double Y)> Points, bool Markers = false);

    /// <summary>
    /// Renders a chart. <paramref name="xTickLabel"/> formats the x ticks (e.g. percentiles on a transformed axis).
    /// </summary>
    public static string Chart(string title, string xLabel, string yLabel, IReadOnlyList<Series> series, Func<double, string>? xTickLabel = null)
    {
        ArgumentNullException.ThrowIfNull(series);
        var pts = series.SelectMany(s => s.Points).ToList();
        var (x0, x1) = pts.Count == 0 ? (0.0, 1.0) : (pts.Min(p => p.X), pts.Max(p => p.X));
        var y1 = pts.Count == 0 ? 1.0 : Nice(pts.Max(p => p.Y));
        if (x1 <= x0)
        {
            x1 = x0 + 1;
        }

        double Sx(double x) => Left + ((x - x0) / (x1 - x0) * (Width - Left - Right));
        double Sy(double y) => Height - Bottom - (y / y1 * (Height - Top - Bottom));
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" font-family=\"sans-serif\" font-size=\"12\">\n");
        sb.Append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{Width / 2}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{Esc(title)}</text>\n");
        for (var i = 0; i <= 5; i++)
        {
            var y = y1 * i / 5;
            var x = x0 + ((x1 - x0) * i / 5);
            sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" x2=\"{Width - Right}\" y1=\"{Sy(y):F1}\" y2=\"{Sy(y):F1}\" stroke=\"#ddd\"/>\n");
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left - 6}\" y=\"{Sy(y) + 4:F1}\" text-anchor=\"end\">{Fmt(y)}</text>\n");
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{Sx(x):F1}\" y=\"{Height - Bottom + 18}\" text-anchor=\"middle\">{Esc(xTickLabel?.Invoke(x) ?? Fmt(x))}</text>\n");
        }

        sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" x2=\"{Left}\" y1=\"{Top}\" y2=\"{Height - Bottom}\" stroke=\"black\"/>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" x2=\"{Width - Right}\" y1=\"{Height - Bottom}\" y2=\"{Height - Bottom}\" stroke=\"black\"/>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{Width / 2}\" y=\"{Height - 10}\" text-anchor=\"middle\">{Esc(xLabel)}</text>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<text transform=\"translate(16,{Height / 2}) rotate(-90)\" text-anchor=\"middle\">{Esc(yLabel)}</text>\n");
        for (var i = 0; i < series.Count; i++)
        {
            var s = series[i];
            var color = Colors[i % Colors.Length];
            if (s.Points.Count > 0)
            {
                var path = string.Join(" ", s.Points.Select(p => string.Create(CultureInfo.InvariantCulture, $"{Sx(p.X):F1},{Sy(p.Y):F1}")));
                sb.Append(CultureInfo.InvariantCulture, $"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{path}\"/>\n");
                if (s.Markers)
                {
                    foreach (var p in s.Points)
                    {
                        sb.Append(CultureInfo.InvariantCulture, $"<circle cx=\"{Sx(p.X):F1}\" cy=\"{Sy(p.Y):F1}\" r=\"3\" fill=\"{color}\"/>\n");
                    }
                }
            }

            sb.Append(CultureInfo.InvariantCulture, $"<rect x=\"{Left + 10}\" y=\"{Top + 4 + (i * 16)}\" width=\"10\" height=\"10\" fill=\"{color}\"/>");
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left + 25}\" y=\"{Top + 13 + (i * 16)}\">{Esc(s.Name)}</text>\n");
        }

        sb.Append("</svg>\n");
        return sb.ToString();
    }

    /// <summary>Rounds up to 1, 2 or 5 × 10^n so axis ticks are round numbers.</summary>
    private static double Nice(double max)
    {
        if (max <= 0)
        {
            return 1;
        }

        var mag = Math.Pow(10, Math.Floor(Math.Log10(max)));
        foreach (var m in (double[])[1, 2, 5, 10])
        {
            if (max <= m * mag)
            {
                return m * mag;
            }
        }

        return 10 * mag;
    }

    private static string Fmt(double v) => Math.Abs(v) switch
    {
        >= 1e6 => (v / 1e6).ToString("0.##", CultureInfo.InvariantCulture) + "M",
        >= 1e4 => (v / 1e3).ToString("0.#", CultureInfo.InvariantCulture) + "k",
        >= 10 => v.ToString("0", CultureInfo.InvariantCulture),
        _ => v.ToString("0.##", CultureInfo.InvariantCulture),
    };

    private static string Esc(string s) => WebUtility.HtmlEncode(s);
}
