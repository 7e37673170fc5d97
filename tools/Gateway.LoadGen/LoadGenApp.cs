namespace Gateway.LoadGen;

/// <summary>Entry point (also called in-process by the tests).</summary>
public static class LoadGenApp
{
    /// <summary>Runs one command; returns the process exit code.</summary>
    public static Task<int> RunAsync(string[] args) => Task.FromResult(0);
}
