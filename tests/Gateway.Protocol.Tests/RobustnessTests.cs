using System.Buffers;
using Gateway.TestUtilities;

namespace Gateway.Protocol.Tests;

/// <summary>
/// Hostile input: the client reader must only ever return a status, the server decoder must only ever throw
/// <see cref="FormatException"/>. Seeds are fixed so a failure reproduces; the failing input is printed as hex.
/// </summary>
public class RobustnessTests
{
    [Fact]
    public void Random_byte_streams_never_throw()
    {
        var random = new Random(6455);
        for (var i = 0; i < 4000; i++)
        {
            var bytes = new byte[random.Next(0, 301)];
            random.NextBytes(bytes);
            if (i % 2 == 1 && bytes.Length >= 2)
            {
                // Half of the inputs start like a frame (fixarray header, then a known tag) so the fuzzing
                // reaches the field readers instead of stopping at byte 0.
                bytes[0] = (byte)(0x90 | random.Next(0, 16));
                bytes[1] = KnownTags[random.Next(KnownTags.Length)];
            }

            AssertNoUnexpectedThrow(bytes);
        }
    }

    [Fact]
    public void Random_mutations_of_every_vector_never_throw()
    {
        var random = new Random(1009);
        foreach (var v in GoldenVectors.ById.Values)
        {
            for (var i = 0; i < 300; i++)
            {
                AssertNoUnexpectedThrow(Mutate(v.Bytes, random));
            }
        }
    }

    [Fact]
    public void Every_truncation_of_every_vector_is_rejected_without_throwing()
    {
        foreach (var v in GoldenVectors.ById.Values.Where(v => !v.IsRejected))
        {
            for (var n = 0; n < v.Bytes.Length; n++)
            {
                var prefix = v.Bytes.AsMemory(0, n);
                if (v.IsClient)
                {
                    Assert.NotEqual(ReadStatus.Ok, ClientFrameReader.TryRead(new ReadOnlySequence<byte>(prefix), out _));
                }
                else if (v.Decoded.ValueKind == System.Text.Json.JsonValueKind.Null)
                {
                    // Past the tag an unknown frame is not read: clients ignore it, cut or not (a cut that the
                    // array header already contradicts is a FormatException).
                    var e = Record.Exception(() => Assert.Null(ServerFrame.Decode(new ReadOnlySequence<byte>(prefix))));
                    Assert.True(e is null or FormatException, $"{v.Id} cut at {n}: {e}");
                }
                else
                {
                    var e = Record.Exception(() => ServerFrame.Decode(new ReadOnlySequence<byte>(prefix)));
                    Assert.True(e is FormatException, $"{v.Id} cut at {n}: {e?.GetType().Name ?? "no exception"}");
                }
            }
        }
    }

    [Fact]
    public void Huge_length_headers_are_rejected_from_the_header()
    {
        // str32 / bin32 / array32 / map32 headers announcing 4 GiB - 1 with nothing behind them.
        byte[][] headers = [[0xdb, 0xff, 0xff, 0xff, 0xff], [0xc6, 0xff, 0xff, 0xff, 0xff], [0xdd, 0xff, 0xff, 0xff, 0xff], [0xdf, 0xff, 0xff, 0xff, 0xff]];
        foreach (var header in headers)
        {
            // As a whole payload, as a Send field (content), and as an ignored trailing field.
            AssertNoUnexpectedThrow(header);
            AssertNoUnexpectedThrow([0x97, 0x03, 0x01, 0xa1, 0x63, 0xa1, 0x6d, 0xa1, 0x74, .. header]);
            AssertNoUnexpectedThrow([0x96, 0x04, 0x01, 0xa1, 0x63, 0x00, 0x01, .. header]);
            AssertNoUnexpectedThrow([0x94, 0x22, 0x01, 0xc0, .. header]);
        }
    }

    [Fact]
    public void Deeply_nested_trailing_field_does_not_crash_either_decoder()
    {
        // 64 KiB of 0x91 (fixarray of one element) nests 65536 arrays; a recursive skip would exhaust the stack.
        const int depth = 64 * 1024;
        var nested = Enumerable.Repeat((byte)0x91, depth).Append((byte)0xc0).ToArray();

        // History [4, 1, "c", 0, 50, <nested>]: the reader bounds the depth of ignored fields, so it is Invalid.
        byte[] history = [0x96, 0x04, 0x01, 0xa1, 0x63, 0x00, 0x32, .. nested];
        Assert.Equal(ReadStatus.Invalid, ClientFrameReader.TryRead(new ReadOnlySequence<byte>(history), out var frame));
        Assert.Equal(1u, frame.RequestId);

        // Subscribe entry [chatId, afterSeq, <nested>].
        byte[] subscribe = [0x93, 0x01, 0x02, 0x91, 0x93, 0xa1, 0x63, 0x00, .. nested];
        Assert.Equal(ReadStatus.Invalid, ClientFrameReader.TryRead(new ReadOnlySequence<byte>(subscribe), out frame));
        Assert.Equal(2u, frame.RequestId);

        // Unsubscribed [34, 3, <nested>]: the client decoder skips unknown trailing fields; it must return or
        // throw FormatException, not overflow the stack.
        byte[] unsubscribed = [0x93, 0x22, 0x03, .. nested];
        try
        {
            Assert.Equal(new UnsubscribedFrame(3), ServerFrame.Decode(new ReadOnlySequence<byte>(unsubscribed)));
        }
        catch (FormatException)
        {
        }

        // The same, split into three segments mid-nesting.
        AssertNoUnexpectedThrow(SequenceSplitter.Split(history, 1000, 40_000));
        AssertNoUnexpectedThrow(SequenceSplitter.Split(unsubscribed, 7, depth / 2));
    }

    [Fact]
    public void Ignored_fields_nested_up_to_the_limit_are_accepted()
    {
        // Nesting is bounded, not forbidden: a trailing [[[1]]] (depth 3) is a legitimate future field.
        byte[] history = [0x96, 0x04, 0x05, 0xa1, 0x63, 0x00, 0x32, 0x91, 0x91, 0x91, 0x01];
        Assert.Equal(ReadStatus.Ok, ClientFrameReader.TryRead(new ReadOnlySequence<byte>(history), out var frame));
        Assert.Equal(5u, frame.RequestId);
        Assert.Equal(50u, frame.Limit);
    }

    // Every assigned tag: client 1..6, server 32..44 (see FrameType). A test below keeps this list complete.
    private static readonly byte[] KnownTags = [1, 2, 3, 4, 5, 6, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44];

    [Fact]
    public void Fuzzing_starts_from_every_known_tag()
    {
        Assert.Equal(Enum.GetValues<FrameType>().Select(t => (byte)t).Order(), KnownTags.Order());
    }

    private static byte[] Mutate(byte[] original, Random random)
    {
        var bytes = new List<byte>(original);
        var operations = random.Next(1, 4);
        for (var op = 0; op < operations; op++)
        {
            var at = bytes.Count == 0 ? 0 : random.Next(bytes.Count);
            switch (random.Next(6))
            {
                case 0 when bytes.Count > 0:
                    bytes[at] = (byte)random.Next(256);
                    break;
                case 1 when bytes.Count > 0:
                    bytes[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 2:
                    bytes.Insert(at, (byte)random.Next(256));
                    break;
                case 3 when bytes.Count > 0:
                    bytes.RemoveAt(at);
                    break;
                case 4 when bytes.Count > 0:
                    bytes.RemoveRange(at, bytes.Count - at);
                    break;
                default:
                    // Interesting MessagePack codes: nil, false, max fixint, negative fixint, wide headers.
                    byte[] codes = [0xc0, 0xc2, 0x7f, 0xff, 0xcf, 0xd3, 0xdc, 0xde, 0xd9, 0xc4, 0xc1];
                    bytes.Insert(at, codes[random.Next(codes.Length)]);
                    break;
            }
        }

        return bytes.ToArray();
    }

    private static void AssertNoUnexpectedThrow(byte[] bytes) => AssertNoUnexpectedThrow(new ReadOnlySequence<byte>(bytes));

    private static void AssertNoUnexpectedThrow(ReadOnlySequence<byte> payload)
    {
        try
        {
            if (ClientFrameReader.TryRead(payload, out var frame) == ReadStatus.Ok &&
                frame.Type is FrameType.Subscribe or FrameType.Unsubscribe)
            {
                // A frame the reader accepted must also enumerate: the server trusts that validation.
                var items = new SubscribeItemReader(frame);
                var n = 0;
                while (items.TryNext(out _, out _))
                {
                    n++;
                }

                Assert.Equal(frame.ItemCount, n);
            }
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException)
        {
            Assert.Fail($"ClientFrameReader threw {e.GetType().Name} for {Convert.ToHexStringLower(payload.ToArray())}: {e}");
        }

        try
        {
            _ = ServerFrame.Decode(payload);
        }
        catch (FormatException)
        {
        }
        catch (Exception e)
        {
            Assert.Fail($"ServerFrame.Decode threw {e.GetType().Name} for {Convert.ToHexStringLower(payload.ToArray())}: {e}");
        }
    }
}
