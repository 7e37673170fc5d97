using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Gateway.Cql.TestPeer;

internal enum TokenKind
{
    Identifier,
    QuotedIdentifier,
    String,
    Integer,
    Float,
    Hex,
    Uuid,
    Symbol,
    Marker,
    End,
}

internal readonly record struct Token(TokenKind Kind, string Text, int Position)
{
    public bool IsKeyword(string keyword) =>
        Kind == TokenKind.Identifier && string.Equals(Text, keyword, StringComparison.OrdinalIgnoreCase);

    public bool IsSymbol(string symbol) => Kind == TokenKind.Symbol && Text == symbol;

    public override string ToString() => Kind switch
    {
        TokenKind.End => "<EOF>",
        TokenKind.String => $"'{Text}'",
        TokenKind.QuotedIdentifier => $"\"{Text}\"",
        _ => Text,
    };
}

/// <summary>Parses the CQL subset the peer supports into statements; what it cannot parse is a SyntaxError naming the token.</summary>
internal sealed partial class Parser
{
    private readonly List<Token> _tokens;
    private readonly List<MarkerTerm> _markers = [];
    private TableRef? _currentTable;
    private int _at;

    private Parser(List<Token> tokens) => _tokens = tokens;

    [GeneratedRegex("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")]
    private static partial Regex UuidPattern();

    public static Statement Parse(string text)
    {
        var parser = new Parser(Lex(text));
        var statement = parser.ParseStatement(topLevel: true);
        while (parser.Peek.IsSymbol(";"))
        {
            parser._at++;
        }

        if (parser.Peek.Kind != TokenKind.End)
        {
            throw parser.Unexpected();
        }

        return statement with { Markers = parser._markers };
    }

    private static List<Token> Lex(string s)
    {
        var tokens = new List<Token>();
        var i = 0;
        while (i < s.Length)
        {
            var c = s[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
                continue;
            }

            if ((c == '-' && At(s, i + 1) == '-') || (c == '/' && At(s, i + 1) == '/'))
            {
                while (i < s.Length && s[i] != '\n')
                {
                    i++;
                }

                continue;
            }

            if (c == '/' && At(s, i + 1) == '*')
            {
                var end = s.IndexOf("*/", i + 2, StringComparison.Ordinal);
                i = end < 0 ? s.Length : end + 2;
                continue;
            }

            var start = i;
            if (c is '\'' or '"')
            {
                var sb = new StringBuilder();
                i++;
                while (true)
                {
                    if (i >= s.Length)
                    {
                        throw CqlException.Syntax($"line 1:{start} unterminated quoted text starting at {start}");
                    }

                    if (s[i] == c)
                    {
                        if (At(s, i + 1) == c)
                        {
                            sb.Append(c);
                            i += 2;
                            continue;
                        }

                        i++;
                        break;
                    }

                    sb.Append(s[i++]);
                }

                tokens.Add(new Token(c == '\'' ? TokenKind.String : TokenKind.QuotedIdentifier, sb.ToString(), start));
                continue;
            }

            var uuid = UuidPattern().Match(s, i, Math.Min(36, s.Length - i));
            if (uuid.Success && uuid.Index == i && !IsIdentChar(At(s, i + 36)))
            {
                tokens.Add(new Token(TokenKind.Uuid, uuid.Value.ToLowerInvariant(), start));
                i += 36;
                continue;
            }

            if (c == '0' && At(s, i + 1) is 'x' or 'X')
            {
                i += 2;
                while (i < s.Length && char.IsAsciiHexDigit(s[i]))
                {
                    i++;
                }

                if ((i - start) % 2 != 0)
                {
                    throw CqlException.Syntax($"line 1:{start} odd number of hex digits in {s[start..i]}");
                }

                tokens.Add(new Token(TokenKind.Hex, s[start..i], start));
                continue;
            }

            if (char.IsAsciiDigit(c) || (c == '-' && char.IsAsciiDigit(At(s, i + 1))))
            {
                i++;
                var isFloat = false;
                while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] is '.' or 'e' or 'E'
                                        || (s[i] is '-' or '+' && s[i - 1] is 'e' or 'E')))
                {
                    isFloat |= s[i] is '.' or 'e' or 'E';
                    i++;
                }

                tokens.Add(new Token(isFloat ? TokenKind.Float : TokenKind.Integer, s[start..i], start));
                continue;
            }

            if (char.IsAsciiLetter(c) || c == '_')
            {
                while (i < s.Length && IsIdentChar(s[i]))
                {
                    i++;
                }

                tokens.Add(new Token(TokenKind.Identifier, s[start..i], start));
                continue;
            }

            if (c == '?')
            {
                tokens.Add(new Token(TokenKind.Marker, "?", start));
                i++;
                continue;
            }

            var two = i + 1 < s.Length ? s.Substring(i, 2) : "";
            if (two is "<=" or ">=" or "!=")
            {
                tokens.Add(new Token(TokenKind.Symbol, two, start));
                i += 2;
                continue;
            }

            if ("(),;.*=<>[]{}:+-".Contains(c, StringComparison.Ordinal))
            {
                tokens.Add(new Token(TokenKind.Symbol, c.ToString(), start));
                i++;
                continue;
            }

            throw CqlException.Syntax($"line 1:{start} unexpected character '{c}'");
        }

        tokens.Add(new Token(TokenKind.End, "", s.Length));
        return tokens;
    }

    private static char At(string s, int i) => i < s.Length ? s[i] : '\0';

    private static bool IsIdentChar(char c) => char.IsAsciiLetterOrDigit(c) || c == '_';

    private Token Peek => _tokens[_at];

    private Token PeekAt(int offset) => _tokens[Math.Min(_at + offset, _tokens.Count - 1)];

    private Token Next() => _tokens[_at < _tokens.Count - 1 ? _at++ : _at];

    private CqlException Unexpected(string? expected = null)
    {
        var t = Peek;
        var what = t.Kind == TokenKind.End ? "end of input" : $"input '{t}'";
        return CqlException.Syntax(
            $"line 1:{t.Position} {(t.Kind == TokenKind.End ? "mismatched" : "no viable alternative at")} {what}"
            + (expected is null ? "" : $" (expecting {expected})"));
    }

    private bool Accept(string keyword)
    {
        if (Peek.IsKeyword(keyword))
        {
            _at++;
            return true;
        }

        return false;
    }

    private void Expect(string keyword)
    {
        if (!Accept(keyword))
        {
            throw Unexpected(keyword.ToUpperInvariant());
        }
    }

    private bool AcceptSymbol(string symbol)
    {
        if (Peek.IsSymbol(symbol))
        {
            _at++;
            return true;
        }

        return false;
    }

    private void ExpectSymbol(string symbol)
    {
        if (!AcceptSymbol(symbol))
        {
            throw Unexpected($"'{symbol}'");
        }
    }

    /// <summary>An identifier: unquoted ones are case-insensitive (folded to lower case), quoted ones kept as written.</summary>
    private string Identifier()
    {
        var t = Peek;
        if (t.Kind == TokenKind.Identifier)
        {
            _at++;
            return t.Text.ToLowerInvariant();
        }

        if (t.Kind == TokenKind.QuotedIdentifier)
        {
            _at++;
            return t.Text;
        }

        throw Unexpected("identifier");
    }

    /// <summary>A [keyspace.]table name; remembered so that the markers after it know which table they bind to.</summary>
    private TableRef TableName()
    {
        var first = Identifier();
        _currentTable = AcceptSymbol(".") ? new TableRef(first, Identifier()) : new TableRef(null, first);
        return _currentTable;
    }

    private Statement ParseStatement(bool topLevel)
    {
        if (Accept("select"))
        {
            return Select();
        }

        if (Accept("insert"))
        {
            return Insert();
        }

        if (Accept("update"))
        {
            return Update();
        }

        if (Accept("delete"))
        {
            return Delete();
        }

        if (topLevel)
        {
            if (Accept("begin"))
            {
                return Batch();
            }

            if (Accept("create"))
            {
                return Create();
            }

            if (Accept("drop"))
            {
                return Drop();
            }

            if (Accept("use"))
            {
                return new UseStatement(Identifier());
            }

            if (Accept("truncate"))
            {
                Accept("table");
                return new TruncateStatement(TableName());
            }
        }

        throw Unexpected();
    }

    private TextBatchStatement Batch()
    {
        var logged = true;
        if (Accept("unlogged") || Accept("counter"))
        {
            logged = false;
        }

        Expect("batch");
        Term? timestamp = null;
        if (Accept("using"))
        {
            Expect("timestamp");
            timestamp = ValueTerm(MarkerRole.Timestamp, null);
        }

        var statements = new List<Statement>();
        while (!Peek.IsKeyword("apply"))
        {
            var s = ParseStatement(topLevel: false);
            if (s is SelectStatement)
            {
                throw CqlException.Invalid("Only INSERT, UPDATE and DELETE statements are allowed in a batch");
            }

            statements.Add(s);
            while (AcceptSymbol(";"))
            {
            }
        }

        Expect("apply");
        Expect("batch");
        return new TextBatchStatement(logged, timestamp, statements);
    }

    private Statement Create()
    {
        if (Accept("keyspace"))
        {
            var ifNotExists = IfNotExists();
            var name = Identifier();
            Expect("with");
            Dictionary<string, string>? replication = null;
            var durable = true;
            do
            {
                var option = Identifier();
                ExpectSymbol("=");
                if (option == "replication")
                {
                    replication = MapLiteral();
                }
                else if (option == "durable_writes")
                {
                    durable = Peek.IsKeyword("true") || !Peek.IsKeyword("false");
                    _at++;
                }
                else
                {
                    throw CqlException.Syntax($"Unknown keyspace option {option}");
                }
            }
            while (Accept("and"));

            if (replication is null || !replication.ContainsKey("class"))
            {
                throw CqlException.Syntax("Missing mandatory replication strategy class");
            }

            return new CreateKeyspaceStatement(name, ifNotExists, replication, durable);
        }

        if (Accept("table") || Accept("columnfamily"))
        {
            return CreateTable();
        }

        throw Unexpected("KEYSPACE or TABLE");
    }

    private bool IfNotExists()
    {
        if (Accept("if"))
        {
            Expect("not");
            Expect("exists");
            return true;
        }

        return false;
    }

    private Dictionary<string, string> MapLiteral()
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        ExpectSymbol("{");
        if (!AcceptSymbol("}"))
        {
            do
            {
                var key = Next();
                ExpectSymbol(":");
                var value = Next();
                if (key.Kind != TokenKind.String || value.Kind is TokenKind.Symbol or TokenKind.End)
                {
                    throw CqlException.Syntax($"line 1:{key.Position} invalid map entry at '{key}'");
                }

                map[key.Text] = value.Text;
            }
            while (AcceptSymbol(","));
            ExpectSymbol("}");
        }

        return map;
    }

    private CreateTableStatement CreateTable()
    {
        var ifNotExists = IfNotExists();
        var table = TableName();
        ExpectSymbol("(");
        var columns = new List<ColumnDeclaration>();
        var partitionKey = new List<string>();
        var clustering = new List<string>();
        do
        {
            if (Accept("primary"))
            {
                Expect("key");
                ExpectSymbol("(");
                if (AcceptSymbol("("))
                {
                    do
                    {
                        partitionKey.Add(Identifier());
                    }
                    while (AcceptSymbol(","));
                    ExpectSymbol(")");
                }
                else
                {
                    partitionKey.Add(Identifier());
                }

                while (AcceptSymbol(","))
                {
                    clustering.Add(Identifier());
                }

                ExpectSymbol(")");
                continue;
            }

            var name = Identifier();
            var type = TypeName();
            if (Accept("static"))
            {
                throw CqlException.Invalid("static columns are not supported by the test peer");
            }

            if (Accept("primary"))
            {
                Expect("key");
                partitionKey.Add(name);
            }

            columns.Add(new ColumnDeclaration(name, type));
        }
        while (AcceptSymbol(","));
        ExpectSymbol(")");

        var descending = new Dictionary<string, bool>(StringComparer.Ordinal);
        var defaultTtl = 0;
        if (Accept("with"))
        {
            do
            {
                if (Accept("clustering"))
                {
                    Expect("order");
                    Expect("by");
                    ExpectSymbol("(");
                    do
                    {
                        var column = Identifier();
                        var desc = Accept("desc");
                        if (!desc)
                        {
                            Accept("asc");
                        }

                        descending[column] = desc;
                    }
                    while (AcceptSymbol(","));
                    ExpectSymbol(")");
                    continue;
                }

                if (Accept("compact"))
                {
                    Expect("storage");
                    continue;
                }

                var option = Identifier();
                ExpectSymbol("=");
                if (Peek.IsSymbol("{"))
                {
                    _ = MapLiteral();
                }
                else
                {
                    var value = Next();
                    if (value.Kind is TokenKind.Symbol or TokenKind.End)
                    {
                        throw CqlException.Syntax($"line 1:{value.Position} invalid value for table option {option}");
                    }

                    if (option == "default_time_to_live")
                    {
                        defaultTtl = int.Parse(value.Text, CultureInfo.InvariantCulture);
                    }
                }
            }
            while (Accept("and"));
        }

        if (partitionKey.Count == 0)
        {
            throw CqlException.Invalid($"No PRIMARY KEY specified for table {table.Table} (exactly one required)");
        }

        return new CreateTableStatement(table, ifNotExists, columns, partitionKey, clustering, descending, defaultTtl);
    }

    private ColumnType TypeName()
    {
        var t = Peek;
        var name = Identifier();
        if (name is "list" or "set" or "map" or "frozen")
        {
            ExpectSymbol("<");
            var element = TypeName();
            ColumnType? value = null;
            if (name == "map")
            {
                ExpectSymbol(",");
                value = TypeName();
            }

            ExpectSymbol(">");
            return name switch
            {
                "frozen" => element,
                "list" => new ColumnType(TypeKind.List, element),
                "set" => new ColumnType(TypeKind.Set, element),
                _ => new ColumnType(TypeKind.Map, element, value),
            };
        }

        return ColumnType.FromName(name)
               ?? throw CqlException.Syntax($"line 1:{t.Position} unknown type {t.Text}");
    }

    private DropStatement Drop()
    {
        bool keyspace;
        if (Accept("keyspace"))
        {
            keyspace = true;
        }
        else if (Accept("table") || Accept("columnfamily"))
        {
            keyspace = false;
        }
        else
        {
            throw Unexpected("KEYSPACE or TABLE");
        }

        var ifExists = false;
        if (Accept("if"))
        {
            Expect("exists");
            ifExists = true;
        }

        var target = keyspace ? new TableRef(Identifier(), "") : TableName();
        return new DropStatement(keyspace, target, ifExists);
    }

    private InsertStatement Insert()
    {
        Expect("into");
        var table = TableName();
        ExpectSymbol("(");
        var columns = new List<string>();
        do
        {
            columns.Add(Identifier());
        }
        while (AcceptSymbol(","));
        ExpectSymbol(")");
        Expect("values");
        ExpectSymbol("(");
        var values = new List<Term>();
        do
        {
            if (values.Count >= columns.Count)
            {
                throw CqlException.Invalid("Unmatched column names/values");
            }

            values.Add(ValueTerm(MarkerRole.Column, columns[values.Count]));
        }
        while (AcceptSymbol(","));
        ExpectSymbol(")");
        if (values.Count != columns.Count)
        {
            throw CqlException.Invalid("Unmatched column names/values");
        }

        var ifNotExists = IfNotExists();
        var (ttl, timestamp) = Using();
        if (!ifNotExists)
        {
            ifNotExists = IfNotExists();
        }

        return new InsertStatement(table, columns, values, ifNotExists, ttl, timestamp);
    }

    private (Term? Ttl, Term? Timestamp) Using()
    {
        Term? ttl = null, timestamp = null;
        if (Accept("using"))
        {
            do
            {
                if (Accept("ttl"))
                {
                    ttl = ValueTerm(MarkerRole.Ttl, null);
                }
                else if (Accept("timestamp"))
                {
                    timestamp = ValueTerm(MarkerRole.Timestamp, null);
                }
                else
                {
                    throw Unexpected("TTL or TIMESTAMP");
                }
            }
            while (Accept("and"));
        }

        return (ttl, timestamp);
    }

    private UpdateStatement Update()
    {
        var table = TableName();
        var (ttl, timestamp) = Using();
        Expect("set");
        var assignments = new List<(string, Term)>();
        do
        {
            var column = Identifier();
            ExpectSymbol("=");
            assignments.Add((column, ValueTerm(MarkerRole.Column, column)));
            if (Peek.IsSymbol("+") || Peek.IsSymbol("-"))
            {
                throw CqlException.Invalid("collection and counter arithmetic are not supported by the test peer");
            }
        }
        while (AcceptSymbol(","));
        Expect("where");
        var where = Relations();
        var (ifExists, conditions) = Conditions();
        return new UpdateStatement(table, ttl, timestamp, assignments, where, ifExists, conditions);
    }

    private DeleteStatement Delete()
    {
        var columns = new List<string>();
        if (!Peek.IsKeyword("from"))
        {
            do
            {
                columns.Add(Identifier());
            }
            while (AcceptSymbol(","));
        }

        Expect("from");
        var table = TableName();
        var (ttl, timestamp) = Using();
        if (ttl is not null)
        {
            throw CqlException.Invalid("A DELETE cannot have a TTL");
        }

        Expect("where");
        var where = Relations();
        var (ifExists, conditions) = Conditions();
        return new DeleteStatement(table, columns, timestamp, where, ifExists, conditions);
    }

    private (bool IfExists, List<Relation> Conditions) Conditions()
    {
        var conditions = new List<Relation>();
        if (!Accept("if"))
        {
            return (false, conditions);
        }

        if (Accept("exists"))
        {
            return (true, conditions);
        }

        do
        {
            conditions.Add(Relation());
        }
        while (Accept("and"));
        return (false, conditions);
    }

    private List<Relation> Relations()
    {
        var list = new List<Relation>();
        do
        {
            list.Add(Relation());
        }
        while (Accept("and"));
        return list;
    }

    private Relation Relation()
    {
        var column = Identifier();
        if (Accept("in"))
        {
            if (Peek.Kind == TokenKind.Marker)
            {
                return new Relation(column, RelationOp.In, [ValueTerm(MarkerRole.InList, column)]);
            }

            ExpectSymbol("(");
            var terms = new List<Term>();
            if (!Peek.IsSymbol(")"))
            {
                do
                {
                    terms.Add(ValueTerm(MarkerRole.Column, column));
                }
                while (AcceptSymbol(","));
            }

            ExpectSymbol(")");
            return new Relation(column, RelationOp.In, terms);
        }

        var opToken = Next();
        var op = opToken.Kind != TokenKind.Symbol ? (RelationOp?)null : opToken.Text switch
        {
            "=" => RelationOp.Eq,
            "<" => RelationOp.Lt,
            "<=" => RelationOp.Le,
            ">" => RelationOp.Gt,
            ">=" => RelationOp.Ge,
            "!=" => RelationOp.Ne,
            _ => null,
        };
        if (op is null)
        {
            _at--;
            throw Unexpected("a relation operator");
        }

        return new Relation(column, op.Value, [ValueTerm(MarkerRole.Column, column)]);
    }

    private SelectStatement Select()
    {
        List<Selector>? selectors = null;
        if (!AcceptSymbol("*"))
        {
            selectors = [];
            do
            {
                selectors.Add(SelectorItem());
            }
            while (AcceptSymbol(","));
        }

        Expect("from");
        var table = TableName();
        var where = new List<Relation>();
        if (Accept("where"))
        {
            where = Relations();
        }

        var orderBy = new List<(string, bool)>();
        if (Accept("order"))
        {
            Expect("by");
            do
            {
                var column = Identifier();
                var desc = Accept("desc");
                if (!desc)
                {
                    Accept("asc");
                }

                orderBy.Add((column, desc));
            }
            while (AcceptSymbol(","));
        }

        Term? limit = null;
        if (Accept("limit"))
        {
            limit = ValueTerm(MarkerRole.Limit, null);
        }

        var allowFiltering = false;
        if (Accept("allow"))
        {
            Expect("filtering");
            allowFiltering = true;
        }

        return new SelectStatement(table, selectors, where, orderBy, limit, allowFiltering);
    }

    private Selector SelectorItem()
    {
        Selector selector;
        if (Peek.Kind == TokenKind.Identifier && PeekAt(1).IsSymbol("("))
        {
            var function = Next().Text.ToLowerInvariant();
            ExpectSymbol("(");
            if (function == "count")
            {
                if (!AcceptSymbol("*"))
                {
                    var one = Next();
                    if (one.Kind != TokenKind.Integer)
                    {
                        _at--;
                        throw Unexpected("* or 1");
                    }
                }

                selector = new Selector(SelectorKind.CountAll, null, "count");
            }
            else if (function is "writetime" or "ttl")
            {
                var column = Identifier();
                selector = new Selector(function == "ttl" ? SelectorKind.Ttl : SelectorKind.WriteTime, column,
                    $"{function}({column})");
            }
            else
            {
                throw CqlException.Invalid($"Unknown function '{function}'");
            }

            ExpectSymbol(")");
        }
        else
        {
            var column = Identifier();
            selector = new Selector(SelectorKind.Column, column, null);
        }

        if (Accept("as"))
        {
            selector = selector with { Alias = Identifier() };
        }

        return selector;
    }

    /// <summary>A term: literal, collection literal, null, or a bind marker whose role and column are remembered.</summary>
    private Term ValueTerm(MarkerRole role, string? column)
    {
        var t = Peek;
        switch (t.Kind)
        {
            case TokenKind.Marker:
                _at++;
                return AddMarker(null, role, column);
            case TokenKind.Symbol when t.Text == ":" && PeekAt(1).Kind is TokenKind.Identifier or TokenKind.QuotedIdentifier:
                _at++;
                return AddMarker(Identifier(), role, column);
            case TokenKind.String:
                _at++;
                return new LiteralTerm(new Literal(LiteralKind.String, t.Text));
            case TokenKind.Integer:
                _at++;
                return new LiteralTerm(new Literal(LiteralKind.Integer, t.Text));
            case TokenKind.Float:
                _at++;
                return new LiteralTerm(new Literal(LiteralKind.Float, t.Text));
            case TokenKind.Hex:
                _at++;
                return new LiteralTerm(new Literal(LiteralKind.Hex, t.Text));
            case TokenKind.Uuid:
                _at++;
                return new LiteralTerm(new Literal(LiteralKind.Uuid, t.Text));
            case TokenKind.Identifier when t.IsKeyword("true") || t.IsKeyword("false"):
                _at++;
                return new LiteralTerm(new Literal(LiteralKind.Boolean, t.Text.ToLowerInvariant()));
            case TokenKind.Identifier when t.IsKeyword("null"):
                _at++;
                return new NullTerm();
            case TokenKind.Symbol when t.Text is "[" or "{":
                return Collection(column);
            default:
                throw Unexpected("a value");
        }
    }

    private MarkerTerm AddMarker(string? name, MarkerRole role, string? column)
    {
        var marker = new MarkerTerm(_markers.Count, name, role, column, _currentTable);
        _markers.Add(marker);
        return marker;
    }

    private CollectionTerm Collection(string? column)
    {
        var open = Next().Text[0];
        var close = open == '[' ? "]" : "}";
        var items = new List<Term>();
        List<Term>? values = null;
        if (!AcceptSymbol(close))
        {
            do
            {
                items.Add(ValueTerm(MarkerRole.Column, column));
                if (open == '{' && AcceptSymbol(":"))
                {
                    values ??= [];
                    values.Add(ValueTerm(MarkerRole.Column, column));
                }
            }
            while (AcceptSymbol(","));
            ExpectSymbol(close);
        }

        if (values is not null && values.Count != items.Count)
        {
            throw CqlException.Syntax("a map literal mixes keys with and without values");
        }

        return new CollectionTerm(open, items, values);
    }
}
