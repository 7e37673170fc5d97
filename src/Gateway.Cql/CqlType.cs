namespace Gateway.Cql;

/// <summary>Type codes of the [option] that describes a column (spec §4.2.5.2).</summary>
public enum CqlTypeCode : ushort
{
    Custom = 0x0000,
    Ascii = 0x0001,
    Bigint = 0x0002,
    Blob = 0x0003,
    Boolean = 0x0004,
    Counter = 0x0005,
    Decimal = 0x0006,
    Double = 0x0007,
    Float = 0x0008,
    Int = 0x0009,
    Timestamp = 0x000B,
    Uuid = 0x000C,
    Varchar = 0x000D,
    Varint = 0x000E,
    Timeuuid = 0x000F,
    Inet = 0x0010,
    Date = 0x0011,
    Time = 0x0012,
    Smallint = 0x0013,
    Tinyint = 0x0014,
    List = 0x0020,
    Map = 0x0021,
    Set = 0x0022,
    Udt = 0x0030,
    Tuple = 0x0031,
}

/// <summary>A column type: a code, and for collections, tuples, UDTs and custom types what they are made of.</summary>
/// <param name="Code">The type code.</param>
/// <param name="CustomClass">The class name of a custom type.</param>
/// <param name="Elements">Element type of a list or set; key and value types of a map; component types of a tuple; field types of a UDT.</param>
/// <param name="FieldNames">Field names of a UDT (same order as <paramref name="Elements"/>).</param>
/// <param name="UdtKeyspace">The keyspace of a UDT.</param>
/// <param name="UdtName">The name of a UDT.</param>
public sealed record CqlType(CqlTypeCode Code, string? CustomClass = null, IReadOnlyList<CqlType>? Elements = null, IReadOnlyList<string>? FieldNames = null, string? UdtKeyspace = null, string? UdtName = null)
{
    /// <summary>A type without parameters.</summary>
    public static CqlType Of(CqlTypeCode code) => new(code);

    /// <inheritdoc />
    public override string ToString() => Code switch
    {
        CqlTypeCode.List or CqlTypeCode.Set or CqlTypeCode.Map or CqlTypeCode.Tuple when Elements is { } e => $"{Code.ToString().ToLowerInvariant()}<{string.Join(", ", e)}>",
        CqlTypeCode.Custom => $"'{CustomClass}'",
        CqlTypeCode.Udt => $"{UdtKeyspace}.{UdtName}",
        _ => Code.ToString().ToLowerInvariant(),
    };
}

/// <summary>A column of a result, or a bind variable of a prepared statement (spec §4.2.5.2).</summary>
public sealed record CqlColumn(string Keyspace, string Table, string Name, CqlType Type);
