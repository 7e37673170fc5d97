using Gateway.LoadGen.Reporting;

namespace Gateway.LoadGen.Tests;

/// <summary>How <see cref="Summary"/> groups runs into tables.</summary>
public sealed class SummaryTests
{
    private static RunReport Broadcast(string target, int subscribers, double value) => new()
    {
        Scenario = "broadcast",
        Target = target,
        Parameters = { ["subscribers"] = subscribers.ToString(System.Globalization.CultureInfo.InvariantCulture) },
        Metrics = { ["maxSustainedDeliveriesPerSec"] = value },
    };

    [Fact]
    public void Broadcast_fanouts_get_their_own_tables_and_ratios()
    {
        var md = Summary.Render(
            [Broadcast("gateway", 100, 9000), Broadcast("signalr", 100, 3000), Broadcast("gateway", 1000, 50000), Broadcast("signalr", 1000, 100000)],
            "t",
            "");
        var s100 = md.IndexOf("## broadcast, S = 100\n", StringComparison.Ordinal);
        var s1000 = md.IndexOf("## broadcast, S = 1000\n", StringComparison.Ordinal);
        Assert.True(s100 >= 0 && s1000 > s100, md);
        Assert.Contains("3×", md[s100..s1000], StringComparison.Ordinal);
        Assert.Contains("0.5×", md[s1000..], StringComparison.Ordinal);
        Assert.DoesNotContain("## broadcast\n", md, StringComparison.Ordinal);
    }
}
