namespace Gateway.Cql.TestPeer;

/// <summary>An error the peer answers with an ERROR frame: the code, the message and the code's extra body.</summary>
internal sealed class CqlException(int code, string message, Action<WireWriter>? details = null) : Exception(message)
{
    public const int ServerError = 0x0000;
    public const int ProtocolError = 0x000A;
    public const int BadCredentials = 0x0100;
    public const int SyntaxErrorCode = 0x2000;
    public const int InvalidCode = 0x2200;
    public const int AlreadyExistsCode = 0x2400;
    public const int UnpreparedCode = 0x2500;

    public int Code { get; } = code;

    public Action<WireWriter>? Details { get; } = details;

    public static CqlException Invalid(string message) => new(InvalidCode, message);

    public static CqlException Syntax(string message) => new(SyntaxErrorCode, message);

    public static CqlException AlreadyExists(string keyspace, string table, string message) =>
        new(AlreadyExistsCode, message, w =>
        {
            w.WriteString(keyspace);
            w.WriteString(table);
        });
}
