using System.Buffers;

namespace Gateway.Nats;

/// <summary>Decoding helpers for NATS payloads.</summary>
internal static class Payload
{
    public static ReadOnlySequence<byte> Of(byte[]? data) => new(data ?? []);
}
