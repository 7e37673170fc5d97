using System.IO.Pipelines;

namespace Gateway.Benchmarks.Support;

/// <summary>The connection's side of an in-memory transport: it reads what the "socket" wrote, and writes what the "socket" drains.</summary>
internal sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
{
    public PipeReader Input { get; } = input;

    public PipeWriter Output { get; } = output;
}
