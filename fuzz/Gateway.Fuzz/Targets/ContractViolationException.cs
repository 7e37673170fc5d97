namespace Gateway.Fuzz;

/// <summary>
/// A target broke its documented contract for one input. Thrown out of the harness on purpose: under afl-fuzz an
/// uncaught exception is reported as a crash, so the input is saved; in replay mode and in the test suites it fails
/// the run with the reason.
/// </summary>
public sealed class ContractViolationException : Exception
{
    public ContractViolationException()
    {
    }

    public ContractViolationException(string message)
        : base(message)
    {
    }

    public ContractViolationException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Throws when <paramref name="condition"/> is false.</summary>
    public static void Check(bool condition, string message)
    {
        if (!condition)
        {
            Throw(message);
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public static void Throw(string message) => throw new ContractViolationException(message);
}
