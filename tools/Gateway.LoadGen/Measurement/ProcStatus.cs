using System.Globalization;

namespace Gateway.LoadGen.Measurement;

/// <summary>Reads a process's resident set size from <c>/proc/&lt;pid&gt;/status</c> (Linux).</summary>
public static class ProcStatus
{
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
