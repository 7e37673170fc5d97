using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gateway.TestUtilities;

namespace Gateway.Protocol.Tests;

/// <summary>The golden vectors in <c>proto/vectors</c> against the codec, in both directions and over split buffers.</summary>
public class GoldenVectorTests
{
    public static TheoryData<string> Accepted => GoldenVectors.Ids(v => !v.IsRejected);

    public static TheoryData<string> Encodable => GoldenVectors.Ids(v => !v.IsRejected && !v.DecodeOnly);

    public static TheoryData<string> Rejected => GoldenVectors.Ids(v => v.IsRejected);

    public static TheoryData<string> All => GoldenVectors.Ids(_ => true);

    [Fact]
    public void Every_frame_type_has_a_vector_in_both_directions()
    {
        var types = GoldenVectors.ById.Values
            .Where(v => !v.IsRejected && v.Decoded.ValueKind == JsonValueKind.Object)
            .Select(v => (FrameType)v.Decoded.GetProperty("type").GetInt32())
            .ToHashSet();
        Assert.Equal(Enum.GetValues<FrameType>().Order(), types.Order());
        Assert.Contains(GoldenVectors.ById.Values, v => v.IsRejected);
        Assert.Contains(GoldenVectors.ById.Values, v => v.DecodeOnly && !v.IsRejected);
    }

    [Fact]
    public void Vector_metadata_is_consistent()
    {
        foreach (var v in GoldenVectors.ById.Values)
        {
            Assert.True(v.Direction is "client-to-server" or "server-to-client", v.Id);
            if (v.IsRejected)
            {
                Assert.True(v.IsClient && v.DecodeOnly, v.Id);
                continue;
            }

            var prefix = v.IsClient ? "client-" : "server-";
            Assert.StartsWith(prefix, v.File, StringComparison.Ordinal);
            if (v.Decoded.ValueKind == JsonValueKind.Object)
            {
                var tag = v.Decoded.GetProperty("type").GetInt32();
                Assert.True(v.IsClient ? tag is >= 1 and <= 31 : tag is >= 32 and <= 63, v.Id);
                Assert.Equal(v.Frame, ((FrameType)tag).ToString());
            }
        }
    }

    [Theory]
    [MemberData(nameof(Accepted))]
    public void Decodes_to_the_documented_fields(string id)
    {
        var v = GoldenVectors.Get(id);
        var decoded = Decode(v, new ReadOnlySequence<byte>(v.Bytes));
        if (v.Decoded.ValueKind == JsonValueKind.Null)
        {
            Assert.Null(decoded);
        }
        else
        {
            JsonAssert.Equal(v.Decoded, decoded);
        }
    }

    [Theory]
    [MemberData(nameof(Encodable))]
    public void Encodes_byte_for_byte(string id)
    {
        var v = GoldenVectors.Get(id);
        var bytes = v.IsClient ? VectorJson.EncodeClient(v.Decoded) : Write(VectorJson.ToServerFrame(v.Decoded));
        Assert.Equal(Convert.ToHexStringLower(v.Bytes), Convert.ToHexStringLower(bytes));
    }

    [Theory]
    [MemberData(nameof(Encodable))]
    public void Decoded_frames_write_back_the_same_bytes(string id)
    {
        // Decode with the codec, then write the record it produced: the round trip a relaying tool would make.
        var v = GoldenVectors.Get(id);
        if (v.IsClient)
        {
            var status = ClientFrameReader.TryRead(new ReadOnlySequence<byte>(v.Bytes), out var frame);
            Assert.Equal(ReadStatus.Ok, status);
            Assert.Equal(v.Bytes, VectorJson.EncodeClient(JsonSerializer.SerializeToElement(VectorJson.FromClientFrame(frame))));
        }
        else
        {
            var frame = ServerFrame.Decode(new ReadOnlySequence<byte>(v.Bytes));
            Assert.NotNull(frame);
            Assert.Equal(v.Bytes, Write(frame));
        }
    }

    [Theory]
    [MemberData(nameof(All))]
    public void Every_split_into_two_or_three_segments_gives_the_same_result(string id)
    {
        var v = GoldenVectors.Get(id);
        var whole = Outcome(v, new ReadOnlySequence<byte>(v.Bytes));
        var splits = 0;
        foreach (var seq in SequenceSplitter.AllTwoWaySplits(v.Bytes).Concat(SequenceSplitter.AllThreeWaySplits(v.Bytes)))
        {
            Assert.True(seq.Length == v.Bytes.Length);
            var got = Outcome(v, seq);
            if (got != whole)
            {
                Assert.Fail($"{id}: split into {SegmentLengths(seq)} gave {got}, whole buffer gave {whole}");
            }

            splits++;
        }

        // n + 1 two-way splits plus (n + 1)(n + 2) / 2 three-way splits (offset pairs i <= j in 0..n).
        var n = v.Bytes.Length;
        Assert.Equal((n + 1) + ((n + 1) * (n + 2) / 2), splits);
    }

    [Theory]
    [MemberData(nameof(Rejected))]
    public void Rejected_client_frames_get_the_documented_status(string id)
    {
        var v = GoldenVectors.Get(id);
        var status = ClientFrameReader.TryRead(new ReadOnlySequence<byte>(v.Bytes), out var frame);
        Assert.Equal(v.Expect.GetProperty("status").GetString(), status.ToString());
        Assert.Equal(v.Expect.GetProperty("requestId").GetUInt32(), frame.RequestId);
    }

    private static JsonNode? Decode(GoldenVector v, ReadOnlySequence<byte> payload)
    {
        if (v.IsClient)
        {
            var status = ClientFrameReader.TryRead(payload, out var frame);
            Assert.True(status == ReadStatus.Ok, $"{v.Id}: {status}");
            return VectorJson.FromClientFrame(frame);
        }

        return VectorJson.FromServerFrame(ServerFrame.Decode(payload));
    }

    // A comparable summary of what decoding produced: status and fields, or the exception type.
    private static string Outcome(GoldenVector v, ReadOnlySequence<byte> payload)
    {
        if (v.IsClient)
        {
            var status = ClientFrameReader.TryRead(payload, out var frame);
            return status == ReadStatus.Ok
                ? VectorJson.FromClientFrame(frame).ToJsonString()
                : $"{status} type={frame.Type} requestId={frame.RequestId}";
        }

        try
        {
            return VectorJson.FromServerFrame(ServerFrame.Decode(payload))?.ToJsonString() ?? "ignored";
        }
        catch (FormatException)
        {
            return "FormatException";
        }
    }

    private static byte[] Write(ServerFrame frame)
    {
        var output = new ArrayBufferWriter<byte>();
        frame.WriteTo(output);
        return output.WrittenSpan.ToArray();
    }

    private static string SegmentLengths(ReadOnlySequence<byte> seq)
    {
        var lengths = new List<int>();
        foreach (var m in seq)
        {
            lengths.Add(m.Length);
        }

        return "[" + string.Join(", ", lengths) + "]";
    }
}
