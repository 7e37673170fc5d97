namespace Gateway.Cql;

/// <summary>Type codes of the [option] that describes a column (spec §4.2.5.2).</summary>
public enum CqlTypeCode : ushort
{
    /// <summary>A custom type, named by its class.</summary>
    Custom = 0x0000,

    /// <summary>US-ASCII text.</summary>
    Ascii = 0x0001,

    /// <summary>64-bit signed integer.</summary>
    Bigint = 0x0002,

    /// <summary>Arbitrary bytes.</summary>
    Blob = 0x0003,

    /// <summary>True or false.</summary>
    Boolean = 0x0004,

    /// <summary>64-bit counter.</summary>
    Counter = 0x0005,

    /// <summary>Arbitrary-precision decimal.</summary>
    Decimal = 0x0006,

    /// <summary>64-bit IEEE 754 floating point.</summary>
    Double = 0x0007,

    /// <summary>32-bit IEEE 754 floating point.</summary>
    Float = 0x0008,

    /// <summary>32-bit signed integer.</summary>
    Int = 0x0009,

    /// <summary>Milliseconds since the Unix epoch, as a 64-bit integer.</summary>
    Timestamp = 0x000B,

    /// <summary>A UUID.</summary>
    Uuid = 0x000C,

    /// <summary>UTF-8 text.</summary>
    Varchar = 0x000D,

    /// <summary>Arbitrary-precision integer.</summary>
    Varint = 0x000E,

    /// <summary>A version 1 (time-based) UUID.</summary>
    Timeuuid = 0x000F,

    /// <summary>An IPv4 or IPv6 address.</summary>
    Inet = 0x0010,

    /// <summary>Days since the epoch, as an unsigned 32-bit integer centred on 2^31.</summary>
    Date = 0x0011,

    /// <summary>Nanoseconds since midnight.</summary>
    Time = 0x0012,

    /// <summary>16-bit signed integer.</summary>
    Smallint = 0x0013,

    /// <summary>8-bit signed integer.</summary>
    Tinyint = 0x0014,

    /// <summary>An ordered list of one element type.</summary>
    List = 0x0020,

    /// <summary>A map from one key type to one value type.</summary>
    Map = 0x0021,

    /// <summary>A set of one element type.</summary>
    Set = 0x0022,

    /// <summary>A user-defined type.</summary>
    Udt = 0x0030,

    /// <summary>A fixed-length tuple of component types.</summary>
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
