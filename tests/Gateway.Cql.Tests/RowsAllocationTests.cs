using System.Buffers;
using Gateway.Cql.Protocol;

namespace Gateway.Cql.Tests;

/// <summary>Decoding and reading a page costs a bounded number of bytes, whatever its row count (spec §4.2.5.2 rows).</summary>
public sealed class RowsAllocationTests
{
    private const int RowCount = 20_000;

    private static byte[] Page() => TestWire.Rows(
        ["id", "n", "flag", "u"],
        [TestWire.T(CqlTypeCode.Bigint), TestWire.T(CqlTypeCode.Int), TestWire.T(CqlTypeCode.Boolean), TestWire.T(CqlTypeCode.Uuid)],
        Enumerable.Range(0, RowCount).Select(i => new object?[] { (long)i, i, i % 2 == 0, Guid.Empty }).ToList());

    private static long DecodeAndRead(byte[] page)
    {
        var body = ArrayPool<byte>.Shared.Rent(page.Length);
        page.CopyTo(body, 0);
        long sum = 0;
        using var result = CqlResponses.ReadResult(new CqlResponseFrame(CqlOpcode.Result, CqlFrameFlags.None, 1, body, page.Length));
        var rows = result.Rows!;
        for (var r = 0; r < rows.Count; r++)
        {
            sum += rows.GetInt64(r, 0) + rows.GetInt32(r, 1) + (rows.GetBoolean(r, 2) ? 1 : 0) + (rows.GetGuid(r, 3) == Guid.Empty ? 0 : 1);
        }

        return sum;
    }

    [Fact]
    public void A_page_of_twenty_thousand_rows_decodes_and_reads_within_a_per_page_bound()
    {
        var page = Page();
        DecodeAndRead(page);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var sum = DecodeAndRead(page);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal((2L * ((long)RowCount * (RowCount - 1) / 2)) + (RowCount / 2), sum);

        // Metadata, the result and the rows object are per page; one allocation per row would already be 20,000+ objects.
        Assert.True(allocated < 8_192, $"{allocated} bytes allocated for one page of {RowCount} rows");
    }
}
