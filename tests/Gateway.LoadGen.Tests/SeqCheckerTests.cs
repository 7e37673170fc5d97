using Gateway.LoadGen.Measurement;
using Gateway.Tools.Common;

namespace Gateway.LoadGen.Tests;

public class SeqCheckerTests
{
    [Fact]
    public void In_order_stream_has_no_anomalies()
    {
        var c = new SeqChecker();
        for (ulong s = 1; s <= 100; s++)
        {
            Assert.Equal(SeqObservation.InOrder, c.Observe(s));
        }

        Assert.Equal((100L, 0L, 0L, 0L, 0L), (c.Received, c.Gaps, c.Duplicates, c.Reordered, c.MissingUpTo(100)));
    }

    [Fact]
    public void Detects_an_injected_gap_duplicate_and_reordering()
    {
        var c = new SeqChecker();
        Assert.Equal(SeqObservation.InOrder, c.Observe(1));
        Assert.Equal(SeqObservation.InOrder, c.Observe(2));
        Assert.Equal(SeqObservation.Gap, c.Observe(5));        // 3 and 4 are missing
        Assert.Equal(2, c.MissingCount);
        Assert.Equal(SeqObservation.Duplicate, c.Observe(2));  // seen before
        Assert.Equal(SeqObservation.Reordered, c.Observe(3));  // late, not lost
        Assert.Equal(SeqObservation.Duplicate, c.Observe(3));  // late and then repeated
        Assert.Equal(SeqObservation.InOrder, c.Observe(6));

        Assert.Equal(1, c.Gaps);
        Assert.Equal(2, c.Duplicates);
        Assert.Equal(1, c.Reordered);
        Assert.Equal(1, c.MissingCount);        // 4 never came
        Assert.Equal(3, c.MissingUpTo(8));      // 4, 7, 8
        Assert.Equal(6UL, c.Highest);
    }

    [Fact]
    public void Starts_after_a_cursor()
    {
        var c = new SeqChecker(afterSeq: 10);
        Assert.Equal(SeqObservation.Duplicate, c.Observe(10));
        Assert.Equal(SeqObservation.InOrder, c.Observe(11));
        Assert.Equal(0, c.MissingUpTo(11));
    }

    [Fact]
    public void Payload_round_trips_and_pads_with_zeros()
    {
        var buffer = new byte[100];
        Array.Fill(buffer, (byte)0xff);
        Payload.Write(buffer, 42, 7, 123456789);
        Assert.True(Payload.TryRead(buffer, out var pub, out var counter, out var ts));
        Assert.Equal((42, 7L, 123456789L), (pub, counter, ts));
        Assert.All(buffer[Payload.HeaderSize..], b => Assert.Equal(0, b));
        Assert.False(Payload.TryRead(buffer.AsSpan(0, Payload.HeaderSize - 1), out _, out _, out _));
    }

    [Fact]
    public void Histogram_survives_the_worker_wire_form()
    {
        var recorder = Histograms.NewRecorder();
        for (var i = 1; i <= 1000; i++)
        {
            recorder.RecordValue(i * 10);
        }

        var decoded = Histograms.Decode(Histograms.Encode(recorder.GetIntervalHistogram()));
        Assert.Equal(1000, decoded.TotalCount);
        Assert.InRange(decoded.GetValueAtPercentile(50), 4990, 5010);
    }

    [Fact]
    public void Least_squares_slope_of_a_line()
    {
        var slope = Scenarios.Coordinator.Slope([(0, 100), (1000, 4100), (2000, 8100)]);
        Assert.Equal(4.0, slope, 6);
    }
}
