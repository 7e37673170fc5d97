using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Gateway.Cql;

/// <summary>
/// The rows of a Rows result (spec §4.2.5.2), read in place from the response body, which lives in a pooled buffer until
/// <see cref="Dispose"/>. Values are addressed by (row, column); reading a scalar allocates nothing.
/// </summary>
public sealed class CqlRows : IDisposable
{
    private byte[]? _buffer;
    private int[]? _offsets;

    /// <summary>Creates rows over <paramref name="buffer"/> (rented; returned on dispose). <paramref name="offsets"/>
    /// (rented; returned on dispose) holds, per cell in row-major order, the offset of its [bytes] length prefix in the buffer.</summary>
    internal CqlRows(IReadOnlyList<CqlColumn> columns, int count, byte[] buffer, int[] offsets, ReadOnlyMemory<byte> pagingState)
    {
        Columns = columns;
        Count = count;
        _buffer = buffer;
        _offsets = offsets;
        PagingState = pagingState;
    }

    /// <summary>The result's columns.</summary>
    public IReadOnlyList<CqlColumn> Columns { get; }

    /// <summary>Rows in this page.</summary>
    public int Count { get; }

    /// <summary>Where the next page starts; empty on the last page. Pass it back in <see cref="CqlStatementOptions.PagingState"/>.</summary>
    public ReadOnlyMemory<byte> PagingState { get; }

    /// <summary>True when the server has more rows after this page.</summary>
    public bool HasMorePages => !PagingState.IsEmpty;

    /// <summary>The index of a column by name; -1 when absent.</summary>
    public int IndexOf(string name)
    {
        for (var i = 0; i < Columns.Count; i++)
        {
            if (string.Equals(Columns[i].Name, name, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>The raw bytes of a cell; empty for null (see <see cref="IsNull"/>).</summary>
    public ReadOnlySpan<byte> GetBytes(int row, int column)
    {
        var at = Offset(row, column);
        var length = BinaryPrimitives.ReadInt32BigEndian(_buffer.AsSpan(at, 4));
        return length < 0 ? [] : _buffer.AsSpan(at + 4, length);
    }

    /// <summary>True when the cell is null.</summary>
    public bool IsNull(int row, int column) => BinaryPrimitives.ReadInt32BigEndian(_buffer.AsSpan(Offset(row, column), 4)) < 0;

    /// <summary>A bigint, counter or timestamp cell.</summary>
    public long GetInt64(int row, int column) => BinaryPrimitives.ReadInt64BigEndian(Fixed(row, column, 8));

    /// <summary>An int cell.</summary>
    public int GetInt32(int row, int column) => BinaryPrimitives.ReadInt32BigEndian(Fixed(row, column, 4));

    /// <summary>A boolean cell.</summary>
    public bool GetBoolean(int row, int column) => Fixed(row, column, 1)[0] != 0;

    /// <summary>A text or ascii cell (allocates the string).</summary>
    public string GetString(int row, int column) => Encoding.UTF8.GetString(GetBytes(row, column));

    /// <summary>A uuid or timeuuid cell.</summary>
    public Guid GetGuid(int row, int column) => new(Fixed(row, column, 16), bigEndian: true);

    /// <summary>A list or set of texts (allocates the list and strings).</summary>
    public IReadOnlyList<string> GetTextList(int row, int column)
    {
        var cell = GetBytes(row, column);
        if (cell.IsEmpty)
        {
            return [];
        }

        var n = BinaryPrimitives.ReadInt32BigEndian(cell);
        var list = new string[n];
        var at = 4;
        for (var i = 0; i < n; i++)
        {
            var len = BinaryPrimitives.ReadInt32BigEndian(cell[at..]);
            list[i] = Encoding.UTF8.GetString(cell.Slice(at + 4, len));
            at += 4 + len;
        }

        return list;
    }

    /// <summary>Returns the buffers to the pool; the rows cannot be read afterwards.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _buffer, null) is { } buffer)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        if (Interlocked.Exchange(ref _offsets, null) is { } offsets)
        {
            ArrayPool<int>.Shared.Return(offsets);
        }
    }

    private int Offset(int row, int column)
    {
        ObjectDisposedException.ThrowIf(_offsets is null, this);
        ArgumentOutOfRangeException.ThrowIfNegative(row);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, Count);
        ArgumentOutOfRangeException.ThrowIfNegative(column);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(column, Columns.Count);
        return _offsets[(row * Columns.Count) + column];
    }

    private ReadOnlySpan<byte> Fixed(int row, int column, int size)
    {
        var cell = GetBytes(row, column);
        return cell.Length == size
            ? cell
            : throw new InvalidCastException($"Column {Columns[column].Name} ({Columns[column].Type}) holds {(IsNull(row, column) ? "null" : $"{cell.Length} bytes")}, not a {size}-byte value");
    }
}
