using System.Globalization;

namespace Gateway.LoadGen.Measurement;

/// <summary>Reads a process's resident set size and CPU time from <c>/proc/&lt;pid&gt;/</c> (Linux).</summary>
public static class ProcStatus
{
    /// <summary>
    /// Clock ticks per second of <c>/proc/&lt;pid&gt;/stat</c>'s times (<c>USER_HZ</c>): 100 on every Linux this runs on
    /// (x86-64 and arm64 fix it at 100 for user space, whatever the kernel's own HZ).
    /// </summary>
    public const double TicksPerSecond = 100;

    /// <summary>CPU µs per event from a CPU share (% of one CPU) and an event rate; -1 when either is unknown or zero.</summary>
    public static double CpuUsPer(double cpuPct, double perSecond) =>
        cpuPct < 0 || perSecond <= 0 ? -1 : Math.Round(cpuPct / 100 / perSecond * 1e6, 3);

    /// <summary>User + system CPU time of a process (all its threads) in clock ticks, or -1 when it is not there.</summary>
    public static long CpuTicks(int pid)
    {
        try
        {
            return ParseCpuTicks(File.ReadAllText($"/proc/{pid}/stat"));
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return -1;
    }

    /// <summary>utime + stime from a <c>/proc/&lt;pid&gt;/stat</c> line (fields 14 and 15; the command name in field 2
    /// is in parentheses and may itself contain spaces and parentheses, so fields are counted after the last ')').</summary>
    public static long ParseCpuTicks(string stat)
    {
        ArgumentNullException.ThrowIfNull(stat);
        var rest = stat[(stat.LastIndexOf(')') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);

        // rest[0] is field 3 (state), so field n is rest[n - 3].
        return long.Parse(rest[14 - 3], CultureInfo.InvariantCulture) + long.Parse(rest[15 - 3], CultureInfo.InvariantCulture);
    }

    /// <summary>VmRSS in bytes, or 0 when the process or the file is not there.</summary>
    public static long RssBytes(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    // "VmRSS:     123456 kB": the kernel's kB is 1024 bytes.
                    var kb = line["VmRSS:".Length..].Trim().Split(' ')[0];
                    return long.Parse(kb, CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return 0;
    }
}
