using System.Buffers;
using Gateway.Protocol;

namespace Gateway.Fuzz;

/// <summary>Target <c>server-frame</c>: <see cref="ServerFrame.Decode"/>, as a client runs it on what a server sent.</summary>
/// <remarks>
/// Contract: Decode returns a frame, returns null (unknown tag), or throws <see cref="FormatException"/>, and nothing
/// else; a decoded frame re-encodes with <see cref="ServerFrame.WriteTo"/> to bytes that decode to a frame encoding to
/// the very same bytes (the writer's form is a fixed point); and every segmentation of the input gives the same outcome.
/// </remarks>
public static class ServerFrameTarget
{
    public const string Name = "server-frame";

    public static void Run(ReadOnlySpan<byte> data)
    {
        string outcome = Outcome(new ReadOnlySequence<byte>(data.ToArray()), canonicalCheck: true);

        var (c1, c2) = Segments.CutsFor(data);
        Same(outcome, Segments.Split(data, c1), $"split at {c1}");
        Same(outcome, Segments.Split(data, c1, c2), $"split at {c1},{c2}");
    }

    private static void Same(string outcome, in ReadOnlySequence<byte> payload, string how)
    {
        string other = Outcome(payload, canonicalCheck: false);
        ContractViolationException.Check(other == outcome, $"{how}: {other}; one segment: {outcome}");
    }

    /// <summary>"format" for a FormatException, "null" for an ignored frame, else the hex of the frame re-encoded.</summary>
    private static string Outcome(in ReadOnlySequence<byte> payload, bool canonicalCheck)
    {
        ServerFrame? frame;
        try
        {
            frame = ServerFrame.Decode(payload);
        }
        catch (FormatException)
        {
            return "format";
        }

        if (frame is null)
        {
            return "null";
        }

        ContractViolationException.Check(Enum.IsDefined(frame.Type) && (byte)frame.Type >= 32, $"decoded a {frame.Type} frame");
        byte[] encoded = Encode(frame);
        if (canonicalCheck)
        {
            ServerFrame? again;
            try
            {
                again = ServerFrame.Decode(new ReadOnlySequence<byte>(encoded));
            }
            catch (FormatException e)
            {
                throw new ContractViolationException($"the writer's bytes for a {frame.Type} do not decode", e);
            }

            ContractViolationException.Check(again is not null && again.Type == frame.Type, "re-decoded to another frame");
            ContractViolationException.Check(Encode(again!).AsSpan().SequenceEqual(encoded), $"{frame.Type} does not round-trip");
        }

        return Convert.ToHexString(encoded);
    }

    private static byte[] Encode(ServerFrame frame)
    {
        var output = new ArrayBufferWriter<byte>();
        frame.WriteTo(output);
        return output.WrittenSpan.ToArray();
    }
}
