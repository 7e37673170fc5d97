namespace Gateway.Cql;

/// <summary>
/// A value bound to a statement's marker. A struct so that binding a row's worth of scalars allocates nothing beyond the
/// array that holds them; <see cref="Unset"/> leaves a column untouched (no tombstone, spec §3 [value] with n = -2),
/// <see cref="Null"/> writes a null (a tombstone for a regular column).
/// </summary>
public readonly struct CqlValue
{
    private readonly long _scalar;
    private readonly object? _reference;
    private readonly ReadOnlyMemory<byte> _blob;

    private CqlValue(CqlValueKind kind, long scalar, object? reference, ReadOnlyMemory<byte> blob = default)
    {
        Kind = kind;
        _scalar = scalar;
        _reference = reference;
        _blob = blob;
    }

    /// <summary>What this value holds.</summary>
    public CqlValueKind Kind { get; }

    /// <summary>Leaves the column as it is (protocol v4 "not set").</summary>
    public static CqlValue Unset => new(CqlValueKind.Unset, 0, null);

    /// <summary>A null.</summary>
    public static CqlValue Null => new(CqlValueKind.Null, 0, null);

    /// <summary>A bigint (or counter).</summary>
    public static CqlValue BigInt(long value) => new(CqlValueKind.BigInt, value, null);

    /// <summary>An int.</summary>
    public static CqlValue Int(int value) => new(CqlValueKind.Int, value, null);

    /// <summary>A boolean.</summary>
    public static CqlValue Boolean(bool value) => new(CqlValueKind.Boolean, value ? 1 : 0, null);

    /// <summary>A timestamp, in milliseconds since the Unix epoch.</summary>
    public static CqlValue Timestamp(long unixMilliseconds) => new(CqlValueKind.Timestamp, unixMilliseconds, null);

    /// <summary>A text (varchar, UTF-8) or ascii value.</summary>
    public static CqlValue Text(string value) => new(CqlValueKind.Text, 0, value ?? throw new ArgumentNullException(nameof(value)));

    /// <summary>A blob. The memory is read when the request is encoded and must not change before the call returns.</summary>
    public static CqlValue Blob(ReadOnlyMemory<byte> value) => new(CqlValueKind.Blob, 0, null, value);

    /// <summary>A uuid or timeuuid.</summary>
    public static CqlValue Uuid(Guid value) => new(CqlValueKind.Uuid, 0, value);

    /// <summary>A list or set of texts.</summary>
    public static CqlValue TextList(IReadOnlyList<string> values) => new(CqlValueKind.TextList, 0, values ?? throw new ArgumentNullException(nameof(values)));

    /// <summary>The scalar of a bigint, int, boolean or timestamp value.</summary>
    public long Scalar => _scalar;

    /// <summary>The text of a text value.</summary>
    public string AsText => (string)_reference!;

    /// <summary>The bytes of a blob value.</summary>
    public ReadOnlyMemory<byte> AsBlob => _blob;

    /// <summary>The uuid of a uuid value.</summary>
    public Guid AsUuid => (Guid)_reference!;

    /// <summary>The elements of a text list value.</summary>
    public IReadOnlyList<string> AsTextList => (IReadOnlyList<string>)_reference!;

    /// <summary>The value as <see cref="BigInt"/>.</summary>
    public static implicit operator CqlValue(long value) => BigInt(value);

    /// <summary>The value as <see cref="Int"/>.</summary>
    public static implicit operator CqlValue(int value) => Int(value);

    /// <summary>The value as <see cref="Boolean"/>.</summary>
    public static implicit operator CqlValue(bool value) => Boolean(value);

    /// <summary>The value as <see cref="Text"/>.</summary>
    public static implicit operator CqlValue(string value) => Text(value);

    /// <summary>The value as <see cref="Blob"/>.</summary>
    public static implicit operator CqlValue(byte[] value) => Blob(value);

    /// <inheritdoc />
    public override string ToString() => Kind switch
    {
        CqlValueKind.Text => $"'{AsText}'",
        CqlValueKind.Blob => $"blob[{AsBlob.Length}]",
        CqlValueKind.Uuid => AsUuid.ToString(),
        CqlValueKind.TextList => $"[{string.Join(", ", AsTextList)}]",
        CqlValueKind.Unset or CqlValueKind.Null => Kind.ToString(),
        _ => _scalar.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}

/// <summary>The kinds of <see cref="CqlValue"/>.</summary>
public enum CqlValueKind : byte
{
    /// <summary>Not bound: the column is left as it is (no tombstone).</summary>
    Unset,

    /// <summary>An explicit null.</summary>
    Null,

    /// <summary>A 64-bit integer (bigint, counter).</summary>
    BigInt,

    /// <summary>A 32-bit integer.</summary>
    Int,

    /// <summary>A boolean.</summary>
    Boolean,

    /// <summary>Milliseconds since the Unix epoch.</summary>
    Timestamp,

    /// <summary>UTF-8 text.</summary>
    Text,

    /// <summary>Bytes.</summary>
    Blob,

    /// <summary>A UUID.</summary>
    Uuid,

    /// <summary>A list of text.</summary>
    TextList,
}
