using System.Buffers;
using System.Diagnostics;
using System.Text;
using Gateway.TestUtilities;

namespace Gateway.Protocol.Tests;

/// <summary>The W3C trace context parser and Send's optional traceparent/tracestate elements.</summary>
public class TracingTests
{
    private const string Valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    [Fact]
    public void A_valid_traceparent_gives_its_ids_and_sampled_flag()
    {
        Assert.True(TraceContext.TryParse(Valid, "congo=t61rcWkgMzE", out var context));
        Assert.Equal("4bf92f3577b34da6a3ce929d0e0e4736", context.TraceId.ToHexString());
        Assert.Equal("00f067aa0ba902b7", context.SpanId.ToHexString());
        Assert.Equal(ActivityTraceFlags.Recorded, context.TraceFlags);
        Assert.Equal("congo=t61rcWkgMzE", context.TraceState);
        Assert.True(context.IsRemote);

        Assert.True(TraceContext.TryParse(Valid[..^2] + "00", out context));
        Assert.Equal(ActivityTraceFlags.None, context.TraceFlags);
        Assert.True(TraceContext.TryParse(Valid[..^2] + "03", out context)); // unknown flag bits are ignored
        Assert.Equal(ActivityTraceFlags.Recorded, context.TraceFlags);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", "uppercase hex")]
    [InlineData("00-00000000000000000000000000000000-00f067aa0ba902b7-01", "all-zero trace id")]
    [InlineData("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "all-zero parent id")]
    [InlineData("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "version ff")]
    [InlineData("0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "short version")]
    [InlineData("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", "short trace id")]
    [InlineData("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01", "short parent id")]
    [InlineData("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1", "short flags")]
    [InlineData("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", "version 00 with more")]
    [InlineData("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x", "flags not hex")]
    [InlineData("00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01", "wrong separators")]
    [InlineData("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902g7-01", "not hex")]
    [InlineData("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", "later version, no dash after the flags")]
    [InlineData(" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "leading space")]
    public void An_invalid_traceparent_is_refused(string traceParent, string why)
    {
        Assert.False(TraceContext.IsValidTraceParent(traceParent), why);
        Assert.False(TraceContext.TryParse(traceParent, out var context), why);
        Assert.Equal(default, context);
    }

    [Fact]
    public void A_later_version_is_read_by_its_first_55_characters()
    {
        Assert.True(TraceContext.TryParse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", out var context));
        Assert.Equal("00f067aa0ba902b7", context.SpanId.ToHexString());
        Assert.True(TraceContext.TryParse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-later", out context));
        Assert.Equal("4bf92f3577b34da6a3ce929d0e0e4736", context.TraceId.ToHexString());
        Assert.False(TraceContext.TryParse("cc-" + new string('a', 32) + "-" + new string('b', 16) + "-01-" + new string('c', 300), out _)); // over the bound
    }

    [Fact]
    public void An_invalid_tracestate_is_dropped_and_the_traceparent_kept()
    {
        Assert.True(TraceContext.TryParse(Valid, new string('a', 513), out var context));
        Assert.Null(context.TraceState);
        Assert.True(TraceContext.TryParse(Valid, "a=b\n", out context));
        Assert.Null(context.TraceState);
        Assert.True(TraceContext.TryParse(Valid, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", out context));
        Assert.Equal("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", context.TraceState);
        Assert.True(TraceContext.IsValidTraceState(new string('x', 512)));
        Assert.False(TraceContext.IsValidTraceState(""));
    }

    [Fact]
    public void Format_writes_a_version_00_traceparent_that_parses_back()
    {
        var context = new ActivityContext(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.Recorded);
        var text = TraceContext.Format(context);
        Assert.Equal(TraceContext.TraceParentLength, text.Length);
        Assert.StartsWith("00-", text, StringComparison.Ordinal);
        Assert.EndsWith("-01", text, StringComparison.Ordinal);
        Assert.True(TraceContext.TryParse(text, out var back));
        Assert.Equal(context.TraceId, back.TraceId);
        Assert.Equal(context.SpanId, back.SpanId);
        Assert.EndsWith("-00", TraceContext.Format(new ActivityContext(context.TraceId, context.SpanId, ActivityTraceFlags.None)), StringComparison.Ordinal);
    }

    [Fact]
    public void TryRead_takes_utf8_fields_in_any_segmentation()
    {
        var parent = Encoding.ASCII.GetBytes(Valid);
        var state = Encoding.ASCII.GetBytes("congo=t61rcWkgMzE");
        for (var cut = 0; cut <= parent.Length; cut++)
        {
            Assert.True(TraceContext.TryRead(TestSequence.Split(parent, cut), TestSequence.Split(state, cut % state.Length), out var tp, out var ts));
            Assert.Equal(Valid, tp);
            Assert.Equal("congo=t61rcWkgMzE", ts);
        }

        Assert.True(TraceContext.TryRead(new ReadOnlySequence<byte>(parent), default, out var onlyParent, out var noState));
        Assert.Equal(Valid, onlyParent);
        Assert.Null(noState);

        // Not ASCII, too short, too long: refused, nothing returned.
        var nonAscii = Encoding.UTF8.GetBytes("00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01");
        Assert.False(TraceContext.TryRead(new ReadOnlySequence<byte>(nonAscii), default, out var none, out _));
        Assert.Null(none);
        Assert.False(TraceContext.TryRead(new ReadOnlySequence<byte>(parent[..54]), default, out _, out _));
        Assert.False(TraceContext.TryRead(new ReadOnlySequence<byte>(new byte[257]), default, out _, out _));
    }

    [Fact]
    public void Refusing_a_traceparent_allocates_nothing()
    {
        var bad = new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(Valid.ToUpperInvariant()));
        var state = new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes("a=b"));
        TraceContext.TryRead(bad, state, out _, out _); // warm up
        var refused = 0;
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++)
        {
            refused += TraceContext.TryRead(bad, state, out _, out _) ? 0 : 1;
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(100, refused);
    }

    [Fact]
    public void Send_round_trips_its_trace_context_and_its_other_fields_read_as_without_it()
    {
        var plain = Write(w => ClientFrameWriter.WriteSend(w, 5, "general", "m-1", "text/plain", "hi"u8, 1_735_689_600_000));
        var traced = Write(w => ClientFrameWriter.WriteSend(w, 5, "general", "m-1", "text/plain", "hi"u8, 1_735_689_600_000, Valid, "k=v"));
        var parentOnly = Write(w => ClientFrameWriter.WriteSend(w, 5, "general", "m-1", "text/plain", "hi"u8, 1_735_689_600_000, Valid, null));

        // Without a trace context the writer's bytes are those of a client that predates the field.
        Assert.Equal(plain, Write(w => ClientFrameWriter.WriteSend(w, 5, "general", "m-1", "text/plain", "hi"u8, 1_735_689_600_000, null, "ignored without a traceparent")));
        Assert.Equal(0x97, plain[0]);
        Assert.Equal(0x98, parentOnly[0]);
        Assert.Equal(0x99, traced[0]);

        Assert.Equal(ReadStatus.Ok, ClientFrameReader.TryRead(new ReadOnlySequence<byte>(plain), out var a));
        Assert.Equal(ReadStatus.Ok, ClientFrameReader.TryRead(new ReadOnlySequence<byte>(traced), out var b));
        Assert.Equal(ReadStatus.Ok, ClientFrameReader.TryRead(new ReadOnlySequence<byte>(parentOnly), out var c));
        Assert.True(a.TraceParent.IsEmpty && a.TraceState.IsEmpty);
        Assert.Equal(Valid, Encoding.ASCII.GetString(b.TraceParent));
        Assert.Equal("k=v", Encoding.ASCII.GetString(b.TraceState));
        Assert.Equal(Valid, Encoding.ASCII.GetString(c.TraceParent));
        Assert.True(c.TraceState.IsEmpty);
        foreach (var f in new[] { b, c })
        {
            Assert.Equal(a.RequestId, f.RequestId);
            Assert.Equal(a.ChatId.ToArray(), f.ChatId.ToArray());
            Assert.Equal(a.ClientMessageId.ToArray(), f.ClientMessageId.ToArray());
            Assert.Equal(a.ContentType.ToArray(), f.ContentType.ToArray());
            Assert.Equal(a.Content.ToArray(), f.Content.ToArray());
            Assert.Equal(a.ExpiresAt, f.ExpiresAt);
        }
    }

    [Theory]
    [MemberData(nameof(SendVectors))]
    public void A_server_from_before_the_field_reads_every_Send_vector_as_this_one_does(string id)
    {
        // The reader of the release before this addition (tests/Gateway.Protocol.Tests/Legacy): a traced Send must be a
        // plain Send to it, the trace elements skipped as ignored trailing fields (PROTOCOL.md §3).
        var v = GoldenVectors.Get(id);
        var payload = new ReadOnlySequence<byte>(v.Bytes);
        Assert.Equal(Legacy.ReadStatus.Ok, Legacy.ClientFrameReader.TryRead(payload, out var old));
        Assert.Equal(ReadStatus.Ok, ClientFrameReader.TryRead(payload, out var now));
        Assert.Equal(now.RequestId, old.RequestId);
        Assert.Equal(now.ChatId.ToArray(), old.ChatId.ToArray());
        Assert.Equal(now.ClientMessageId.ToArray(), old.ClientMessageId.ToArray());
        Assert.Equal(now.ContentType.ToArray(), old.ContentType.ToArray());
        Assert.Equal(now.Content.ToArray(), old.Content.ToArray());
        Assert.Equal(now.ExpiresAt, old.ExpiresAt);
    }

    public static TheoryData<string> SendVectors => GoldenVectors.Ids(v => v.File == "client-send.json");

    [Fact]
    public void The_send_vectors_cover_the_trace_context()
    {
        var decoded = GoldenVectors.ById.Values.Where(v => v.File == "client-send.json").Select(v => v.Decoded).ToList();
        Assert.Contains(decoded, d => d.TryGetProperty("traceparent", out _) && !d.TryGetProperty("tracestate", out _));
        Assert.Contains(decoded, d => d.TryGetProperty("tracestate", out _));
    }

    [Fact]
    public void Reading_a_traced_send_allocates_nothing()
    {
        var traced = new ReadOnlySequence<byte>(Write(w => ClientFrameWriter.WriteSend(w, 5, "general", "m-1", "text/plain", "hi"u8, null, Valid, "k=v")));
        ClientFrameReader.TryRead(traced, out _);
        var ok = 0;
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++)
        {
            ok += ClientFrameReader.TryRead(traced, out var frame) == ReadStatus.Ok && !frame.TraceState.IsEmpty ? 1 : 0;
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(100, ok);
    }

    private static byte[] Write(Action<IBufferWriter<byte>> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        write(buffer);
        return buffer.WrittenSpan.ToArray();
    }
}
