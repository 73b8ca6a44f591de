// Jinja statements and expressions to a small syntax tree, with Jinja2's operator precedence:
// or < and < not < comparisons (==, !=, <, >, <=, >=, in, not in) < + - < ~ < * / // % < ** < unary -
// < postfix (.attr, [index], [a:b], (call), | filter, is test) < primary.
namespace Duet.Tokenizers.ChatTemplates;

internal abstract record Node;
internal sealed record TextNode(string Text) : Node;
internal sealed record OutputNode(Expr Value) : Node;
internal sealed record IfNode(List<(Expr Cond, Node[] Body)> Branches, Node[]? Else) : Node;
internal sealed record ForNode(string[] Targets, Expr Iterable, Expr? Filter, Node[] Body, Node[]? Else, int Line) : Node;
internal sealed record SetNode(string Name, string? Attr, Expr Value) : Node;
internal sealed record MacroNode(string Name, string[] Params, Expr?[] Defaults, Node[] Body) : Node;
internal sealed record BlockNode(Node[] Body) : Node; // {% generation %} and other pass-through blocks

internal abstract record Expr(int Line);
internal sealed record Literal(object? Value, int Line) : Expr(Line);
internal sealed record Name(string Id, int Line) : Expr(Line);
internal sealed record ListExpr(Expr[] Items, int Line) : Expr(Line);
internal sealed record DictExpr((Expr Key, Expr Value)[] Items, int Line) : Expr(Line);
internal sealed record Attr(Expr Target, string Name, int Line) : Expr(Line);
internal sealed record Index(Expr Target, Expr Key, int Line) : Expr(Line);
internal sealed record Slice(Expr Target, Expr? Start, Expr? Stop, Expr? Step, int Line) : Expr(Line);
internal sealed record Call(Expr Target, Expr[] Args, (string Name, Expr Value)[] Kwargs, int Line) : Expr(Line);
internal sealed record Filter(Expr Target, string Name, Expr[] Args, (string Name, Expr Value)[] Kwargs, int Line) : Expr(Line);
internal sealed record Test(Expr Target, string Name, Expr[] Args, bool Negated, int Line) : Expr(Line);
internal sealed record Unary(string Op, Expr Operand, int Line) : Expr(Line);
internal sealed record Binary(string Op, Expr Left, Expr Right, int Line) : Expr(Line);
internal sealed record Conditional(Expr Cond, Expr Then, Expr? Else, int Line) : Expr(Line);

internal sealed class Parser(List<Token> tokens)
{
    private int _pos;
    private int _depth;

    private Token Peek => tokens[_pos];
    private Token Next() => tokens[_pos++];

    private ChatTemplateException Error(string msg, Token? at = null)
    {
        var t = at ?? Peek;
        return new ChatTemplateException(t.Line > 0 ? $"chat template line {t.Line}, column {t.Column}: {msg}" : $"chat template: {msg}");
    }

    private bool IsOp(string op) => Peek.Kind == Tk.Op && Peek.Value == op;
    private bool IsName(string name) => Peek.Kind == Tk.Name && Peek.Value == name;

    private void ExpectOp(string op)
    {
        if (!IsOp(op)) throw Error($"expected '{op}', found {Peek}");
        _pos++;
    }

    private string ExpectName()
    {
        if (Peek.Kind != Tk.Name) throw Error($"expected a name, found {Peek}");
        return Next().Value;
    }

    private void Expect(Tk kind)
    {
        if (Peek.Kind != kind) throw Error($"expected {(kind == Tk.BlockEnd ? "%}" : kind == Tk.VarEnd ? "}}" : kind.ToString())}, found {Peek}");
        _pos++;
    }

    public Node[] ParseTemplate()
    {
        var body = ParseBody(out var end);
        if (end is not null) throw Error($"'{end}' without its opening block");
        return body;
    }

    private static readonly HashSet<string> s_enders = ["endif", "elif", "else", "endfor", "endmacro", "endset", "endgeneration", "endfilter", "endcall", "endraw"];

    // Nodes up to the end of the template or a block tag that closes the current block (returned in `end`, its tag consumed up to the name).
    private Node[] ParseBody(out string? end)
    {
        if (++_depth > 64) throw Error("blocks nest deeper than 64");
        var nodes = new List<Node>();
        end = null;
        while (Peek.Kind != Tk.Eof)
        {
            var t = Next();
            if (t.Kind == Tk.Text) { nodes.Add(new TextNode(t.Value)); continue; }
            if (t.Kind == Tk.VarBegin)
            {
                nodes.Add(new OutputNode(ParseExpr()));
                Expect(Tk.VarEnd);
                continue;
            }
            if (t.Kind != Tk.BlockBegin) throw Error($"unexpected {t}", t);
            var kw = Peek;
            string name = ExpectName();
            if (s_enders.Contains(name)) { end = name; _depth--; return nodes.ToArray(); }
            nodes.Add(name switch
            {
                "if" => ParseIf(),
                "for" => ParseFor(kw.Line),
                "set" => ParseSet(),
                "macro" => ParseMacro(),
                "generation" or "filter" or "call" => ParsePassThrough(name),
                "raw" => ParseRaw(),
                _ => throw Error($"unknown tag '{name}'", kw),
            });
        }
        _depth--;
        return nodes.ToArray();
    }

    private Node ParseIf()
    {
        var branches = new List<(Expr, Node[])>();
        Node[]? otherwise = null;
        var cond = ParseExpr();
        Expect(Tk.BlockEnd);
        while (true)
        {
            var body = ParseBody(out var end);
            if (end is null) throw Error("'if' is not closed with endif");
            branches.Add((cond, body));
            if (end == "elif") { cond = ParseExpr(); Expect(Tk.BlockEnd); continue; }
            if (end == "else")
            {
                Expect(Tk.BlockEnd);
                otherwise = ParseBody(out end);
                if (end != "endif") throw Error("'else' is not closed with endif");
            }
            else if (end != "endif") throw Error($"'{end}' inside an if block");
            Expect(Tk.BlockEnd);
            return new IfNode(branches, otherwise);
        }
    }

    private Node ParseFor(int line)
    {
        var targets = new List<string> { ExpectName() };
        while (IsOp(",")) { _pos++; targets.Add(ExpectName()); }
        if (!IsName("in")) throw Error($"expected 'in', found {Peek}");
        _pos++;
        var iterable = ParseOr(noConditional: true);
        Expr? filter = null;
        if (IsName("if")) { _pos++; filter = ParseExpr(); }
        if (IsName("recursive")) throw Error("recursive loops are not supported");
        Expect(Tk.BlockEnd);
        var body = ParseBody(out var end);
        Node[]? otherwise = null;
        if (end == "else") { Expect(Tk.BlockEnd); otherwise = ParseBody(out end); }
        if (end != "endfor") throw Error("'for' is not closed with endfor");
        Expect(Tk.BlockEnd);
        return new ForNode(targets.ToArray(), iterable, filter, body, otherwise, line);
    }

    private Node ParseSet()
    {
        string name = ExpectName();
        string? attr = null;
        if (IsOp(".")) { _pos++; attr = ExpectName(); }
        if (IsOp(","))  throw Error("tuple assignment in set is not supported");
        if (Peek.Kind == Tk.BlockEnd)
        {
            // {% set x %}...{% endset %}: the rendered body.
            _pos++;
            var body = ParseBody(out var end);
            if (end != "endset") throw Error("'set' block is not closed with endset");
            Expect(Tk.BlockEnd);
            return new SetNode(name, attr, new Call(new Literal(new CaptureBody(body), 0), [], [], 0));
        }
        ExpectOp("=");
        var value = ParseExpr();
        Expect(Tk.BlockEnd);
        return new SetNode(name, attr, value);
    }

    private Node ParseMacro()
    {
        string name = ExpectName();
        ExpectOp("(");
        var ps = new List<string>();
        var defs = new List<Expr?>();
        while (!IsOp(")"))
        {
            ps.Add(ExpectName());
            if (IsOp("=")) { _pos++; defs.Add(ParseExpr()); } else defs.Add(null);
            if (!IsOp(")")) ExpectOp(",");
        }
        _pos++;
        Expect(Tk.BlockEnd);
        var body = ParseBody(out var end);
        if (end != "endmacro") throw Error("'macro' is not closed with endmacro");
        Expect(Tk.BlockEnd);
        return new MacroNode(name, ps.ToArray(), defs.ToArray(), body);
    }

    private Node ParsePassThrough(string name)
    {
        if (name != "generation") throw Error($"'{name}' blocks are not supported");
        Expect(Tk.BlockEnd);
        var body = ParseBody(out var end);
        if (end != "end" + name) throw Error($"'{name}' is not closed with end{name}");
        Expect(Tk.BlockEnd);
        return new BlockNode(body);
    }

    private Node ParseRaw() => throw Error("raw blocks are not supported");

    // ---- expressions ----

    public Expr ParseExpr()
    {
        if (++_depth > 200) throw Error("the expression nests too deeply");
        try
        {
            var e = ParseOr(noConditional: false);
            return e;
        }
        finally { _depth--; }
    }

    private Expr ParseOr(bool noConditional)
    {
        var left = ParseAnd();
        while (IsName("or")) { int l = Next().Line; left = new Binary("or", left, ParseAnd(), l); }
        if (!noConditional && IsName("if"))
        {
            int l = Next().Line;
            var cond = ParseOr(noConditional: true);
            Expr? otherwise = null;
            if (IsName("else")) { _pos++; otherwise = ParseOr(noConditional: false); }
            return new Conditional(cond, left, otherwise, l);
        }
        return left;
    }

    private Expr ParseAnd()
    {
        var left = ParseNot();
        while (IsName("and")) { int l = Next().Line; left = new Binary("and", left, ParseNot(), l); }
        return left;
    }

    private Expr ParseNot()
    {
        if (IsName("not")) { int l = Next().Line; return new Unary("not", ParseNot(), l); }
        return ParseCompare();
    }

    private Expr ParseCompare()
    {
        var left = ParseMath1();
        while (true)
        {
            int l = Peek.Line;
            if (Peek.Kind == Tk.Op && Peek.Value is "==" or "!=" or "<" or ">" or "<=" or ">=") { var op = Next().Value; left = new Binary(op, left, ParseMath1(), l); }
            else if (IsName("in")) { _pos++; left = new Binary("in", left, ParseMath1(), l); }
            else if (IsName("not") && tokens[_pos + 1].Kind == Tk.Name && tokens[_pos + 1].Value == "in") { _pos += 2; left = new Binary("notin", left, ParseMath1(), l); }
            else return left;
        }
    }

    private Expr ParseMath1()
    {
        var left = ParseConcat();
        while (IsOp("+") || IsOp("-")) { var t = Next(); left = new Binary(t.Value, left, ParseConcat(), t.Line); }
        return left;
    }

    private Expr ParseConcat()
    {
        var left = ParseMath2();
        while (IsOp("~")) { var t = Next(); left = new Binary("~", left, ParseMath2(), t.Line); }
        return left;
    }

    private Expr ParseMath2()
    {
        var left = ParsePow();
        while (Peek.Kind == Tk.Op && Peek.Value is "*" or "/" or "//" or "%") { var t = Next(); left = new Binary(t.Value, left, ParsePow(), t.Line); }
        return left;
    }

    private Expr ParsePow()
    {
        var left = ParseUnary();
        while (IsOp("**")) { var t = Next(); left = new Binary("**", left, ParseUnary(), t.Line); }
        return left;
    }

    private Expr ParseUnary()
    {
        if (IsOp("-") || IsOp("+")) { var t = Next(); return new Unary(t.Value, ParseUnary(), t.Line); }
        return ParsePostfix(ParsePrimary());
    }

    private Expr ParsePrimary()
    {
        var t = Next();
        switch (t.Kind)
        {
            case Tk.String:
            {
                string s = t.Value;
                while (Peek.Kind == Tk.String) s += Next().Value; // adjacent literals concatenate, as in Python
                return new Literal(s, t.Line);
            }
            case Tk.Int: return new Literal(long.TryParse(t.Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long v) ? v : throw Error("an integer literal is too large", t), t.Line);
            case Tk.Float: return new Literal(double.Parse(t.Value, System.Globalization.CultureInfo.InvariantCulture), t.Line);
            case Tk.Name:
                return t.Value switch
                {
                    "true" or "True" => new Literal(true, t.Line),
                    "false" or "False" => new Literal(false, t.Line),
                    "none" or "None" => new Literal(null, t.Line),
                    _ => new Name(t.Value, t.Line),
                };
            case Tk.Op when t.Value == "(":
            {
                var e = ParseExpr();
                if (IsOp(","))
                {
                    var items = new List<Expr> { e };
                    while (IsOp(",")) { _pos++; if (IsOp(")")) break; items.Add(ParseExpr()); }
                    ExpectOp(")");
                    return new ListExpr(items.ToArray(), t.Line);
                }
                ExpectOp(")");
                return e;
            }
            case Tk.Op when t.Value == "[":
            {
                var items = new List<Expr>();
                while (!IsOp("]")) { items.Add(ParseExpr()); if (!IsOp("]")) ExpectOp(","); }
                _pos++;
                return new ListExpr(items.ToArray(), t.Line);
            }
            case Tk.Op when t.Value == "{":
            {
                var items = new List<(Expr, Expr)>();
                while (!IsOp("}"))
                {
                    var k = ParseExpr();
                    ExpectOp(":");
                    items.Add((k, ParseExpr()));
                    if (!IsOp("}")) ExpectOp(",");
                }
                _pos++;
                return new DictExpr(items.ToArray(), t.Line);
            }
            default: throw Error($"unexpected {t}", t);
        }
    }

    private Expr ParsePostfix(Expr e)
    {
        while (true)
        {
            int l = Peek.Line;
            if (IsOp(".")) { _pos++; e = new Attr(e, Peek.Kind == Tk.Int ? Next().Value : ExpectName(), l); }
            else if (IsOp("["))
            {
                _pos++;
                Expr? start = null, stop = null, step = null;
                bool slice = false;
                if (!IsOp(":")) start = ParseExpr();
                if (IsOp(":"))
                {
                    slice = true;
                    _pos++;
                    if (!IsOp("]") && !IsOp(":")) stop = ParseExpr();
                    if (IsOp(":")) { _pos++; if (!IsOp("]")) step = ParseExpr(); }
                }
                ExpectOp("]");
                e = slice ? new Slice(e, start, stop, step, l) : new Index(e, start!, l);
            }
            else if (IsOp("(")) { var (a, k) = ParseArgs(); e = new Call(e, a, k, l); }
            else if (IsOp("|"))
            {
                _pos++;
                string name = ExpectName();
                Expr[] args = [];
                (string, Expr)[] kwargs = [];
                if (IsOp("(")) (args, kwargs) = ParseArgs();
                e = new Filter(e, name, args, kwargs, l);
            }
            else if (IsName("is"))
            {
                _pos++;
                bool negated = false;
                if (IsName("not")) { _pos++; negated = true; }
                string name = Peek.Kind == Tk.Name ? Next().Value : throw Error($"expected a test name, found {Peek}");
                Expr[] args = [];
                if (IsOp("(")) args = ParseArgs().Args;
                else if (Peek.Kind is Tk.Int or Tk.String or Tk.Float) args = [ParsePrimary()];
                e = new Test(e, name, args, negated, l);
            }
            else return e;
        }
    }

    private (Expr[] Args, (string, Expr)[] Kwargs) ParseArgs()
    {
        ExpectOp("(");
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        while (!IsOp(")"))
        {
            if (Peek.Kind == Tk.Name && tokens[_pos + 1].Kind == Tk.Op && tokens[_pos + 1].Value == "=")
            {
                string n = Next().Value;
                _pos++;
                kwargs.Add((n, ParseExpr()));
            }
            else args.Add(ParseExpr());
            if (!IsOp(")")) ExpectOp(",");
        }
        _pos++;
        return (args.ToArray(), kwargs.ToArray());
    }
}

/// <summary>A {% set x %}...{% endset %} body, rendered when the set runs.</summary>
internal sealed record CaptureBody(Node[] Body);
