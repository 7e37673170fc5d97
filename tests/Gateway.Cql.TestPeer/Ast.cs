namespace Gateway.Cql.TestPeer;

internal enum LiteralKind
{
    String,
    Integer,
    Float,
    Boolean,
    Hex,
    Uuid,
}

internal sealed record Literal(LiteralKind Kind, string Text);

/// <summary>A value in the query text: a literal, a collection literal, null, or a bind marker.</summary>
internal abstract record Term;

internal sealed record LiteralTerm(Literal Value) : Term;

internal sealed record NullTerm : Term;

/// <summary>A collection literal: [..] (list), {..} (set), or {k: v, ..} (map).</summary>
internal sealed record CollectionTerm(char Bracket, List<Term> Items, List<Term>? Values) : Term;

/// <summary>What a bind marker binds to, for the prepared metadata and for typing the bound value.</summary>
internal enum MarkerRole
{
    Column,
    InList,
    Limit,
    Ttl,
    Timestamp,
}

internal sealed record MarkerTerm(int Index, string? Name, MarkerRole Role, string? Column, TableRef? Table) : Term;

internal sealed record TableRef(string? Keyspace, string Table);

internal enum RelationOp
{
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
    Ne,
    In,
}

/// <summary>A WHERE relation or an IF condition: column op term (IN: several terms, or one marker for the list).</summary>
internal sealed record Relation(string Column, RelationOp Op, List<Term> Terms);

internal abstract record Statement
{
    /// <summary>The bind markers in order of appearance (their indexes are positions in this list).</summary>
    public List<MarkerTerm> Markers { get; init; } = [];
}

internal sealed record CreateKeyspaceStatement(string Name, bool IfNotExists, Dictionary<string, string> Replication, bool DurableWrites)
    : Statement;

internal sealed record ColumnDeclaration(string Name, ColumnType Type);

internal sealed record CreateTableStatement(
    TableRef Table,
    bool IfNotExists,
    List<ColumnDeclaration> Columns,
    List<string> PartitionKey,
    List<string> Clustering,
    Dictionary<string, bool> Descending,
    int DefaultTtl) : Statement;

internal sealed record DropStatement(bool Keyspace, TableRef Target, bool IfExists) : Statement;

internal sealed record UseStatement(string Keyspace) : Statement;

internal sealed record TruncateStatement(TableRef Table) : Statement;

internal sealed record InsertStatement(
    TableRef Table, List<string> Columns, List<Term> Values, bool IfNotExists, Term? Ttl, Term? Timestamp) : Statement;

internal sealed record UpdateStatement(
    TableRef Table,
    Term? Ttl,
    Term? Timestamp,
    List<(string Column, Term Value)> Assignments,
    List<Relation> Where,
    bool IfExists,
    List<Relation> Conditions) : Statement;

internal sealed record DeleteStatement(
    TableRef Table, List<string> Columns, Term? Timestamp, List<Relation> Where, bool IfExists, List<Relation> Conditions)
    : Statement;

internal enum SelectorKind
{
    Column,
    WriteTime,
    Ttl,
    CountAll,
}

internal sealed record Selector(SelectorKind Kind, string? Column, string? Alias);

internal sealed record SelectStatement(
    TableRef Table,
    List<Selector>? Selectors,
    List<Relation> Where,
    List<(string Column, bool Descending)> OrderBy,
    Term? Limit,
    bool AllowFiltering) : Statement;

internal sealed record TextBatchStatement(bool Logged, Term? Timestamp, List<Statement> Statements) : Statement;
