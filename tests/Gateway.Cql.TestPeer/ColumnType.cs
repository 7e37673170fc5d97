using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Numerics;
using System.Text;

namespace Gateway.Cql.TestPeer;

/// <summary>The CQL types the peer understands; the numeric values are the protocol's [option] ids.</summary>
internal enum TypeKind
{
    Ascii = 0x01,
    Bigint = 0x02,
    Blob = 0x03,
    Boolean = 0x04,
    Counter = 0x05,
    Double = 0x07,
    Float = 0x08,
    Int = 0x09,
    Timestamp = 0x0B,
    Uuid = 0x0C,
    Varchar = 0x0D,
    Varint = 0x0E,
    Timeuuid = 0x0F,
    Inet = 0x10,
    Date = 0x11,
    Time = 0x12,
    Smallint = 0x13,
    Tinyint = 0x14,
    List = 0x20,
    Map = 0x21,
    Set = 0x22,
}

/// <summary>A column's type, with its element types for collections; knows its wire form, literals and ordering.</summary>
internal sealed class ColumnType
{
    public static readonly ColumnType Text = new(TypeKind.Varchar);
    public static readonly ColumnType BigintType = new(TypeKind.Bigint);
    public static readonly ColumnType IntType = new(TypeKind.Int);
    public static readonly ColumnType BooleanType = new(TypeKind.Boolean);
    public static readonly ColumnType UuidType = new(TypeKind.Uuid);
    public static readonly ColumnType InetType = new(TypeKind.Inet);
    public static readonly ColumnType TextSet = new(TypeKind.Set, Text);
    public static readonly ColumnType TextMap = new(TypeKind.Map, Text, Text);

    public ColumnType(TypeKind kind, ColumnType? element = null, ColumnType? value = null)
    {
        Kind = kind;
        Element = element;
        Value = value;
    }

    public TypeKind Kind { get; }

    /// <summary>The element type of a list or set, or the key type of a map.</summary>
    public ColumnType? Element { get; }

    /// <summary>The value type of a map.</summary>
    public ColumnType? Value { get; }

    public bool IsCollection => Kind is TypeKind.List or TypeKind.Set or TypeKind.Map;

    public static ColumnType? FromName(string name) => name.ToLowerInvariant() switch
    {
        "ascii" => new(TypeKind.Ascii),
        "bigint" => BigintType,
        "blob" => new(TypeKind.Blob),
        "boolean" => BooleanType,
        "counter" => new(TypeKind.Counter),
        "double" => new(TypeKind.Double),
        "float" => new(TypeKind.Float),
        "int" => IntType,
        "timestamp" => new(TypeKind.Timestamp),
        "uuid" => UuidType,
        "text" or "varchar" => Text,
        "varint" => new(TypeKind.Varint),
        "timeuuid" => new(TypeKind.Timeuuid),
        "inet" => InetType,
        "date" => new(TypeKind.Date),
        "time" => new(TypeKind.Time),
        "smallint" => new(TypeKind.Smallint),
        "tinyint" => new(TypeKind.Tinyint),
        _ => null,
    };

    public override string ToString() => Kind switch
    {
        TypeKind.List => $"list<{Element}>",
        TypeKind.Set => $"set<{Element}>",
        TypeKind.Map => $"map<{Element}, {Value}>",
        TypeKind.Varchar => "text",
        _ => Kind.ToString().ToLowerInvariant(),
    };

    /// <summary>Writes the type as a protocol [option].</summary>
    public void WriteOption(WireWriter w)
    {
        w.WriteShort((ushort)Kind);
        Element?.WriteOption(w);
        Value?.WriteOption(w);
    }

    /// <summary>Checks that bound bytes are a valid serialized value of this type (so stored data is never garbage).</summary>
    public void Validate(byte[] bytes, string column)
    {
        if (bytes.Length == 0 && !IsCollection)
        {
            // The protocol allows "empty" values for most types, for legacy compatibility.
            return;
        }

        var expected = Kind switch
        {
            TypeKind.Bigint or TypeKind.Counter or TypeKind.Timestamp or TypeKind.Double or TypeKind.Time => 8,
            TypeKind.Int or TypeKind.Float or TypeKind.Date => 4,
            TypeKind.Smallint => 2,
            TypeKind.Tinyint or TypeKind.Boolean => 1,
            TypeKind.Uuid or TypeKind.Timeuuid => 16,
            _ => -1,
        };
        if (expected >= 0 && bytes.Length != expected)
        {
            throw CqlException.Invalid(
                $"Invalid value for column {column} of type {this}: expected {expected} bytes but got {bytes.Length}");
        }

        switch (Kind)
        {
            case TypeKind.Inet when bytes.Length is not (4 or 16):
                throw CqlException.Invalid($"Invalid inet value for column {column}: {bytes.Length} bytes");
            case TypeKind.Varchar:
                try
                {
                    _ = new UTF8Encoding(false, true).GetString(bytes);
                }
                catch (DecoderFallbackException)
                {
                    throw CqlException.Invalid($"Invalid UTF-8 for text column {column}");
                }

                break;
            case TypeKind.Ascii when bytes.Any(b => b > 127):
                throw CqlException.Invalid($"Invalid ASCII for column {column}");
            case TypeKind.Timeuuid when (bytes[6] >> 4) != 1:
                throw CqlException.Invalid($"Invalid version for TimeUUID type in column {column}");
            case TypeKind.List or TypeKind.Set or TypeKind.Map:
                _ = DecodeCollection(bytes, column);
                break;
        }
    }

    /// <summary>Decodes a collection, validating its elements; sets and maps come back sorted and de-duplicated.</summary>
    public List<(byte[] Key, byte[]? Value)> DecodeCollection(byte[] bytes, string column)
    {
        var result = new List<(byte[], byte[]?)>();
        try
        {
            var r = new WireReader(bytes);
            var n = r.ReadInt();
            for (var i = 0; i < n; i++)
            {
                var key = r.ReadBytes() ?? throw CqlException.Invalid($"null element in collection {column}");
                Element!.Validate(key, column);
                byte[]? value = null;
                if (Kind == TypeKind.Map)
                {
                    value = r.ReadBytes() ?? throw CqlException.Invalid($"null map value in {column}");
                    Value!.Validate(value, column);
                }

                result.Add((key, value));
            }

            if (!r.AtEnd)
            {
                throw CqlException.Invalid($"trailing bytes after collection value for {column}");
            }
        }
        catch (ProtocolViolationException e)
        {
            throw CqlException.Invalid($"Invalid collection value for {column}: {e.Message}");
        }

        if (Kind != TypeKind.List)
        {
            result.Sort((a, b) => Element!.Compare(a.Item1, b.Item1));
            for (var i = result.Count - 1; i > 0; i--)
            {
                if (Element!.Compare(result[i].Item1, result[i - 1].Item1) == 0)
                {
                    // The last one bound for a key wins, as in a real map literal.
                    result.RemoveAt(i - 1);
                }
            }
        }

        return result;
    }

    /// <summary>Re-encodes a bound collection in its canonical (sorted, de-duplicated) form.</summary>
    public byte[] Canonical(byte[] bytes, string column)
    {
        if (!IsCollection)
        {
            return bytes;
        }

        return EncodeCollection(DecodeCollection(bytes, column));
    }

    public static byte[] EncodeCollection(IReadOnlyList<(byte[] Key, byte[]? Value)> items)
    {
        var w = new WireWriter();
        w.WriteInt(items.Count);
        foreach (var (key, value) in items)
        {
            w.WriteBytes(key);
            if (value is not null)
            {
                w.WriteBytes(value);
            }
        }

        return w.ToArray();
    }

    /// <summary>Orders two serialized values of this type the way the database sorts them (clustering order).</summary>
    public int Compare(byte[] a, byte[] b)
    {
        if (a.Length == 0 || b.Length == 0)
        {
            return a.Length.CompareTo(b.Length);
        }

        switch (Kind)
        {
            case TypeKind.Bigint or TypeKind.Counter or TypeKind.Timestamp or TypeKind.Time
                when a.Length == 8 && b.Length == 8:
                return BinaryPrimitives.ReadInt64BigEndian(a).CompareTo(BinaryPrimitives.ReadInt64BigEndian(b));
            case TypeKind.Int when a.Length == 4 && b.Length == 4:
                return BinaryPrimitives.ReadInt32BigEndian(a).CompareTo(BinaryPrimitives.ReadInt32BigEndian(b));
            case TypeKind.Date when a.Length == 4 && b.Length == 4:
                return BinaryPrimitives.ReadUInt32BigEndian(a).CompareTo(BinaryPrimitives.ReadUInt32BigEndian(b));
            case TypeKind.Smallint when a.Length == 2 && b.Length == 2:
                return BinaryPrimitives.ReadInt16BigEndian(a).CompareTo(BinaryPrimitives.ReadInt16BigEndian(b));
            case TypeKind.Tinyint:
                return ((sbyte)a[0]).CompareTo((sbyte)b[0]);
            case TypeKind.Double when a.Length == 8 && b.Length == 8:
                return BinaryPrimitives.ReadDoubleBigEndian(a).CompareTo(BinaryPrimitives.ReadDoubleBigEndian(b));
            case TypeKind.Float when a.Length == 4 && b.Length == 4:
                return BinaryPrimitives.ReadSingleBigEndian(a).CompareTo(BinaryPrimitives.ReadSingleBigEndian(b));
            case TypeKind.Varint:
                return new BigInteger(a, false, true).CompareTo(new BigInteger(b, false, true));
            case TypeKind.Boolean:
                return (a[0] != 0).CompareTo(b[0] != 0);
            case TypeKind.Timeuuid or TypeKind.Uuid when a.Length == 16 && b.Length == 16:
                {
                    // Version-1 UUIDs sort by their embedded time first, as Cassandra's UUID ordering does.
                    if ((a[6] >> 4) == 1 && (b[6] >> 4) == 1)
                    {
                        var byTime = UuidTime(a).CompareTo(UuidTime(b));
                        if (byTime != 0)
                        {
                            return byTime;
                        }
                    }

                    return a.AsSpan().SequenceCompareTo(b);
                }

            default:
                return a.AsSpan().SequenceCompareTo(b);
        }
    }

    private static long UuidTime(byte[] u) =>
        ((long)(((u[6] & 0x0F) << 8) | u[7]) << 48) | ((long)((u[4] << 8) | u[5]) << 32)
        | BinaryPrimitives.ReadUInt32BigEndian(u);

    /// <summary>Serializes a literal of the query text as a value of this type, or fails with Invalid.</summary>
    public byte[] FromLiteral(Literal literal, string column)
    {
        string Bad() => $"Invalid {literal.Kind.ToString().ToLowerInvariant()} constant ({literal.Text}) for \"{column}\" of type {this}";
        var text = literal.Text;
        switch (Kind)
        {
            case TypeKind.Varchar or TypeKind.Ascii when literal.Kind == LiteralKind.String:
                var bytes = Encoding.UTF8.GetBytes(text);
                Validate(bytes, column);
                return bytes;
            case TypeKind.Bigint or TypeKind.Counter or TypeKind.Timestamp or TypeKind.Time
                when literal.Kind == LiteralKind.Integer && long.TryParse(text, CultureInfo.InvariantCulture, out var l):
                return Long(l);
            case TypeKind.Timestamp when literal.Kind == LiteralKind.String
                                         && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture,
                                             DateTimeStyles.AssumeUniversal, out var when):
                return Long(when.ToUnixTimeMilliseconds());
            case TypeKind.Int when literal.Kind == LiteralKind.Integer && int.TryParse(text, CultureInfo.InvariantCulture, out var i):
                return Int(i);
            case TypeKind.Smallint when literal.Kind == LiteralKind.Integer && short.TryParse(text, CultureInfo.InvariantCulture, out var s):
                var sb = new byte[2];
                BinaryPrimitives.WriteInt16BigEndian(sb, s);
                return sb;
            case TypeKind.Tinyint when literal.Kind == LiteralKind.Integer && sbyte.TryParse(text, CultureInfo.InvariantCulture, out var t):
                return [(byte)t];
            case TypeKind.Varint when literal.Kind == LiteralKind.Integer && BigInteger.TryParse(text, CultureInfo.InvariantCulture, out var v):
                return v.ToByteArray(false, true);
            case TypeKind.Double when literal.Kind is LiteralKind.Integer or LiteralKind.Float
                                      && double.TryParse(text, CultureInfo.InvariantCulture, out var d):
                var db = new byte[8];
                BinaryPrimitives.WriteDoubleBigEndian(db, d);
                return db;
            case TypeKind.Float when literal.Kind is LiteralKind.Integer or LiteralKind.Float
                                     && float.TryParse(text, CultureInfo.InvariantCulture, out var f):
                var fb = new byte[4];
                BinaryPrimitives.WriteSingleBigEndian(fb, f);
                return fb;
            case TypeKind.Boolean when literal.Kind == LiteralKind.Boolean:
                return [text == "true" ? (byte)1 : (byte)0];
            case TypeKind.Blob when literal.Kind == LiteralKind.Hex:
                return Convert.FromHexString(text.AsSpan(2));
            case TypeKind.Uuid or TypeKind.Timeuuid when literal.Kind == LiteralKind.Uuid:
                var u = Convert.FromHexString(text.Replace("-", "", StringComparison.Ordinal));
                Validate(u, column);
                return u;
            case TypeKind.Inet when literal.Kind == LiteralKind.String && IPAddress.TryParse(text, out var ip):
                return ip.GetAddressBytes();
            default:
                throw CqlException.Invalid(Bad());
        }
    }

    public static byte[] Long(long value)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(b, value);
        return b;
    }

    public static byte[] Int(int value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(b, value);
        return b;
    }
}
