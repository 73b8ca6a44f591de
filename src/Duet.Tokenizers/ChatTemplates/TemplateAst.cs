// The parsed template: statements and expressions of the supported Jinja2 subset. Offset is the position in the
// normalized template text, turned into line and column only when an error is reported.
namespace Duet.Tokenizers.ChatTemplates;

internal abstract record Node(int Offset);

// ---- expressions ------------------------------------------------------------------------------------------
internal abstract record Expr(int Offset) : Node(Offset);

internal sealed record ConstExpr(object? Value, int Offset) : Expr(Offset);
internal sealed record NameExpr(string Name, int Offset) : Expr(Offset);
internal sealed record ListExpr(IReadOnlyList<Expr> Items, bool IsTuple, int Offset) : Expr(Offset);
internal sealed record DictExpr(IReadOnlyList<(Expr Key, Expr Value)> Items, int Offset) : Expr(Offset);
internal sealed record GetAttrExpr(Expr Target, string Name, int Offset) : Expr(Offset);
internal sealed record GetItemExpr(Expr Target, Expr Index, int Offset) : Expr(Offset);
internal sealed record SliceExpr(Expr? Start, Expr? Stop, Expr? Step, int Offset) : Expr(Offset);
internal sealed record CallExpr(Expr Callee, Arguments Args, int Offset) : Expr(Offset);
internal sealed record FilterExpr(Expr? Value, string Name, Arguments Args, int Offset) : Expr(Offset);
internal sealed record TestExpr(Expr Value, string Name, Arguments Args, bool Negated, int Offset) : Expr(Offset)
{
    public int NameOffset { get; init; } = Offset;
}
internal sealed record UnaryExpr(string Op, Expr Operand, int Offset) : Expr(Offset);
internal sealed record BinaryExpr(string Op, Expr Left, Expr Right, int Offset) : Expr(Offset);
internal sealed record CompareExpr(Expr First, IReadOnlyList<(string Op, Expr Operand)> Rest, int Offset) : Expr(Offset);
internal sealed record CondExpr(Expr Test, Expr Then, Expr? Else, int Offset) : Expr(Offset);

internal sealed record Arguments(IReadOnlyList<Expr> Positional, IReadOnlyList<(string Name, Expr Value)> Keyword)
{
    public static readonly Arguments None = new([], []);
}

// ---- assignment targets -----------------------------------------------------------------------------------
internal abstract record Target(int Offset) : Node(Offset);
internal sealed record NameTarget(string Name, int Offset) : Target(Offset);
internal sealed record AttrTarget(string Name, string Attr, int Offset) : Target(Offset);
internal sealed record TupleTarget(IReadOnlyList<Target> Items, int Offset) : Target(Offset);

// ---- statements -------------------------------------------------------------------------------------------
internal abstract record Stmt(int Offset) : Node(Offset);

internal sealed record TextStmt(string Text, int Offset) : Stmt(Offset);
internal sealed record OutputStmt(Expr Value, int Offset) : Stmt(Offset);
internal sealed record IfStmt(IReadOnlyList<(Expr Test, IReadOnlyList<Stmt> Body)> Branches, IReadOnlyList<Stmt>? Else, int Offset) : Stmt(Offset);
internal sealed record ForStmt(Target Target, Expr Iterable, Expr? Filter, IReadOnlyList<Stmt> Body, IReadOnlyList<Stmt>? Else, int Offset) : Stmt(Offset);
internal sealed record SetStmt(Target Target, Expr Value, int Offset) : Stmt(Offset);
internal sealed record SetBlockStmt(Target Target, IReadOnlyList<FilterExpr> Filters, IReadOnlyList<Stmt> Body, int Offset) : Stmt(Offset);
/// <summary>UsesVarargs / UsesKwargs: the body reads varargs / kwargs, so surplus arguments are accepted (jinja2's rule).</summary>
internal sealed record MacroStmt(string Name, IReadOnlyList<(string Name, Expr? Default)> Parameters, IReadOnlyList<Stmt> Body, bool UsesVarargs, bool UsesKwargs, int Offset) : Stmt(Offset);
internal sealed record WithStmt(IReadOnlyList<(Target Target, Expr Value)> Assignments, IReadOnlyList<Stmt> Body, int Offset) : Stmt(Offset);
internal sealed record FilterBlockStmt(IReadOnlyList<FilterExpr> Filters, IReadOnlyList<Stmt> Body, int Offset) : Stmt(Offset);
/// <summary>transformers' {% generation %}...{% endgeneration %}: renders its body.</summary>
internal sealed record GenerationStmt(IReadOnlyList<Stmt> Body, int Offset) : Stmt(Offset);
internal sealed record BreakStmt(int Offset) : Stmt(Offset);
internal sealed record ContinueStmt(int Offset) : Stmt(Offset);

/// <summary>A parsed template and the lexer that maps its offsets to lines and columns.</summary>
internal sealed record TemplateBody(IReadOnlyList<Stmt> Statements, TemplateLexer Lexer);
