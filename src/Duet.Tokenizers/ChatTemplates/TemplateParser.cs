// Tokens -> statements and expressions, by recursive descent in jinja2's own precedence order (lowest first):
//   a if c else b  <  or  <  and  <  not  <  comparisons (== != < <= > >= in, not in; chained)
//   <  + -  <  ~  <  * / // %  <  **  <  unary - +  <  primary with .attr [index] (call), then | filter and `is` test
// so `'a' + x | trim` trims only x and `'x' ~ 1 + 2` is ('x' ~ 1) + 2, as in jinja2.
// Tags jinja2 has but Duet does not (include, import, extends, block, call) are syntax errors here, and so are
// filters and tests outside the supported set wherever jinja2 itself checks them when compiling (see CheckNames):
// a template that needs them falls back to ChatML rather than render wrong.
// Nesting is bounded (MaxDepth) so a hostile template cannot overflow the stack.
namespace Duet.Tokenizers.ChatTemplates;

internal sealed class TemplateParser
{
    /// <summary>Maximum nesting of statements and expressions, counting each link of an operator, filter or attribute chain (real templates stay under 30).</summary>
    public const int MaxDepth = 256;

    private readonly List<Token> _tokens;
    private readonly TemplateLexer _lexer;
    private int _pos;
    private int _depth;
    private int _loopDepth;                 // break / continue are only valid inside a for body (not in its else, not across a macro)
    private HashSet<string>? _macroNames;   // names read inside the macro being parsed

    private TemplateParser(List<Token> tokens, TemplateLexer lexer)
    {
        _tokens = tokens;
        _lexer = lexer;
    }

    public static TemplateBody Parse(string source)
    {
        try
        {
            var (tokens, lexer) = TemplateLexer.Tokenize(source);
            var parser = new TemplateParser(tokens, lexer);
            var body = parser.ParseBody([], out _);
            parser.CheckNames(body, soft: false);
            return new TemplateBody(body, lexer);
        }
        catch (Exception e) when (e is not (ChatTemplateException or OutOfMemoryException))
        {
            // A parser bug must not escape as another exception type (ForTokenizer relies on ChatTemplateException).
            throw new ChatTemplateException($"chat template could not be parsed (internal error: {e.GetType().Name}: {e.Message})", e);
        }
    }

    // ---- token helpers ----------------------------------------------------------------------------------------
    private Token Current => _tokens[_pos];
    private Token Next() => _tokens[_pos++];

    private ChatTemplateException Error(string message, int? offset = null) => _lexer.Error(message, offset ?? Current.Offset);

    private static string Describe(Token t) => t.Kind switch
    {
        TokenKind.Eof => "end of template",
        TokenKind.BlockEnd => "end of statement block ('%}')",
        TokenKind.VariableEnd => "end of print statement ('}}')",
        TokenKind.String => "string literal",
        TokenKind.Text => "template text",
        _ => $"'{t.Value}'",
    };

    private bool IsOp(string op) => Current.Kind == TokenKind.Operator && Current.Value == op;
    private bool IsName(string name) => Current.Kind == TokenKind.Name && Current.Value == name;

    private bool SkipOp(string op)
    {
        if (!IsOp(op)) return false;
        _pos++;
        return true;
    }

    private bool SkipName(string name)
    {
        if (!IsName(name)) return false;
        _pos++;
        return true;
    }

    private Token ExpectOp(string op)
    {
        if (!IsOp(op)) throw Error($"expected '{op}', got {Describe(Current)}");
        return Next();
    }

    private string ExpectName()
    {
        if (Current.Kind != TokenKind.Name) throw Error($"expected a name, got {Describe(Current)}");
        return Next().Value;
    }

    private void ExpectBlockEnd()
    {
        if (Current.Kind != TokenKind.BlockEnd) throw Error($"expected end of statement block ('%}}'), got {Describe(Current)}");
        _pos++;
    }

    private void Enter()
    {
        if (++_depth > MaxDepth) throw Error($"template nesting deeper than {MaxDepth}");
    }

    // ---- statements -------------------------------------------------------------------------------------------

    /// <summary>Statements until one of <paramref name="endTags"/> opens a block ({% name ...); returns with that name consumed in <paramref name="endTag"/>.</summary>
    private List<Stmt> ParseBody(string[] endTags, out string? endTag)
    {
        Enter();
        var body = new List<Stmt>();
        endTag = null;
        while (true)
        {
            var t = Current;
            switch (t.Kind)
            {
                case TokenKind.Eof:
                    if (endTags.Length > 0)
                        throw Error($"unexpected end of template; looking for {string.Join(" or ", endTags.Select(e => $"'{e}'"))}");
                    _depth--;
                    return body;
                case TokenKind.Text:
                    body.Add(new TextStmt(t.Value, t.Offset));
                    _pos++;
                    break;
                case TokenKind.VariableBegin:
                    {
                        _pos++;
                        var e = ParseTuple(allowCondExpr: true);
                        if (Current.Kind != TokenKind.VariableEnd) throw Error($"expected end of print statement ('}}}}'), got {Describe(Current)}");
                        _pos++;
                        body.Add(new OutputStmt(e, t.Offset));
                        break;
                    }
                case TokenKind.BlockBegin:
                    {
                        _pos++;
                        if (Current.Kind != TokenKind.Name) throw Error($"expected a tag name, got {Describe(Current)}");
                        string tag = Current.Value;
                        if (Array.IndexOf(endTags, tag) >= 0)
                        {
                            _pos++;
                            endTag = tag;
                            _depth--;
                            return body;
                        }
                        body.Add(ParseStatement(t.Offset));
                        break;
                    }
                default:
                    throw Error($"unexpected {Describe(t)}");
            }
        }
    }

    private Stmt ParseStatement(int offset)
    {
        var nameTok = Next();
        switch (nameTok.Value)
        {
            case "if": return ParseIf(offset);
            case "for": return ParseFor(offset);
            case "set": return ParseSet(offset);
            case "macro": return ParseMacro(offset);
            case "with": return ParseWith(offset);
            case "filter": return ParseFilterBlock(offset);
            case "generation":
                {
                    // transformers' {% generation %} (AssistantTracker) renders its body unchanged.
                    ExpectBlockEnd();
                    var body = ParseBody(["endgeneration"], out _);
                    ExpectBlockEnd();
                    return new GenerationStmt(body, offset);
                }
            case "break" or "continue":
                if (_loopDepth == 0) throw Error($"'{nameTok.Value}' outside a loop", nameTok.Offset);
                ExpectBlockEnd();
                return nameTok.Value == "break" ? new BreakStmt(offset) : new ContinueStmt(offset);
            case "include" or "import" or "from" or "extends" or "block" or "call" or "do" or "autoescape" or "trans":
                throw Error($"the '{nameTok.Value}' tag is not supported in chat templates", nameTok.Offset);
            case "elif" or "else" or "endif" or "endfor" or "endset" or "endmacro" or "endwith" or "endfilter" or "endgeneration" or "endraw":
                throw Error($"unexpected '{nameTok.Value}' (no open block expects it here)", nameTok.Offset);
            default:
                throw Error($"unknown tag '{nameTok.Value}'", nameTok.Offset);
        }
    }

    private IfStmt ParseIf(int offset)
    {
        var branches = new List<(Expr, IReadOnlyList<Stmt>)>();
        List<Stmt>? elseBody = null;
        var test = ParseTuple(allowCondExpr: false); // jinja2: no `a if b else c` as an if / elif test
        while (true)
        {
            ExpectBlockEnd();
            var body = ParseBody(["elif", "else", "endif"], out var end);
            branches.Add((test, body));
            if (end == "elif")
            {
                test = ParseTuple(allowCondExpr: false);
                continue;
            }
            if (end == "else")
            {
                ExpectBlockEnd();
                elseBody = ParseBody(["endif"], out _);
            }
            ExpectBlockEnd();
            return new IfStmt(branches, elseBody, offset);
        }
    }

    private ForStmt ParseFor(int offset)
    {
        var target = ParseAssignTarget(allowAttr: false);
        if (!SkipName("in")) throw Error($"expected 'in', got {Describe(Current)}");
        var iterable = ParseTuple(allowCondExpr: false);
        Expr? filter = null;
        if (SkipName("if")) filter = ParseExpression();
        if (IsName("recursive")) throw Error("recursive loops are not supported");
        ExpectBlockEnd();
        _loopDepth++;
        var body = ParseBody(["endfor", "else"], out var end);
        _loopDepth--;
        List<Stmt>? elseBody = null;
        if (end == "else")
        {
            ExpectBlockEnd();
            elseBody = ParseBody(["endfor"], out _);
        }
        ExpectBlockEnd();
        return new ForStmt(target, iterable, filter, body, elseBody, offset);
    }

    private Stmt ParseSet(int offset)
    {
        var target = ParseAssignTarget(allowAttr: true);
        if (SkipOp("="))
        {
            var value = ParseTuple(allowCondExpr: true);
            ExpectBlockEnd();
            return new SetStmt(target, value, offset);
        }
        // {% set x %}...{% endset %}, optionally {% set x | filter %}
        var filters = new List<FilterExpr>();
        while (SkipOp("|")) filters.Add(ParseFilterCall(null));
        ExpectBlockEnd();
        var body = ParseBody(["endset"], out _);
        ExpectBlockEnd();
        return new SetBlockStmt(target, filters, body, offset);
    }

    private MacroStmt ParseMacro(int offset)
    {
        string name = ExpectName();
        ExpectOp("(");
        var parameters = new List<(string, Expr?)>();
        bool sawDefault = false;
        while (!IsOp(")"))
        {
            if (parameters.Count > 0) ExpectOp(",");
            if (IsOp(")")) break;
            int at = Current.Offset;
            string p = ExpectName();
            Expr? dflt = null;
            if (SkipOp("=")) { dflt = ParseExpression(); sawDefault = true; }
            else if (sawDefault) throw Error("non-default argument follows default argument", at);
            parameters.Add((p, dflt));
        }
        ExpectOp(")");
        ExpectBlockEnd();
        var (savedLoops, savedNames) = (_loopDepth, _macroNames);
        _loopDepth = 0;
        _macroNames = [];
        var body = ParseBody(["endmacro"], out _);
        var names = _macroNames;
        (_loopDepth, _macroNames) = (savedLoops, savedNames);
        _macroNames?.UnionWith(names);
        if (Current.Kind == TokenKind.Name && Current.Value == name) _pos++;
        ExpectBlockEnd();
        return new MacroStmt(name, parameters, body, names.Contains("varargs"), names.Contains("kwargs"), offset);
    }

    private WithStmt ParseWith(int offset)
    {
        var assignments = new List<(Target, Expr)>();
        while (Current.Kind != TokenKind.BlockEnd)
        {
            if (assignments.Count > 0) ExpectOp(",");
            var target = ParseAssignTarget(allowAttr: false);
            ExpectOp("=");
            assignments.Add((target, ParseExpression()));
        }
        ExpectBlockEnd();
        var body = ParseBody(["endwith"], out _);
        ExpectBlockEnd();
        return new WithStmt(assignments, body, offset);
    }

    private FilterBlockStmt ParseFilterBlock(int offset)
    {
        var filters = new List<FilterExpr> { ParseFilterCall(null) };
        while (SkipOp("|")) filters.Add(ParseFilterCall(null));
        ExpectBlockEnd();
        var body = ParseBody(["endfilter"], out _);
        ExpectBlockEnd();
        return new FilterBlockStmt(filters, body, offset);
    }

    /// <summary>name | ns.attr (set only) | a, b | (a, b)</summary>
    private Target ParseAssignTarget(bool allowAttr)
    {
        int offset = Current.Offset;
        var items = new List<Target>();
        bool tuple = false;
        while (true)
        {
            items.Add(ParseSingleTarget(allowAttr));
            if (!SkipOp(",")) break;
            tuple = true;
            // jinja2 ends a target tuple after a comma only at '%}' or ')': `for a, in x` and `set a, = 1` are errors
            if (Current.Kind == TokenKind.BlockEnd || IsOp(")")) break;
        }
        return tuple ? new TupleTarget(items, offset) : items[0];
    }

    private Target ParseSingleTarget(bool allowAttr)
    {
        int offset = Current.Offset;
        if (SkipOp("("))
        {
            var inner = ParseAssignTarget(allowAttr: false);
            ExpectOp(")");
            return inner is TupleTarget ? inner : new TupleTarget([inner], offset);
        }
        string name = ExpectName();
        if (IsReserved(name)) throw Error($"cannot assign to '{name}'", offset);
        if (allowAttr && SkipOp("."))
            return new AttrTarget(name, ExpectName(), offset);
        return new NameTarget(name, offset);
    }

    private static bool IsReserved(string name) => name is "true" or "false" or "none" or "True" or "False" or "None";

    // ---- expressions ------------------------------------------------------------------------------------------

    /// <summary>An expression, or several separated by commas (a tuple without parentheses).</summary>
    private Expr ParseTuple(bool allowCondExpr)
    {
        int offset = Current.Offset;
        var first = allowCondExpr ? ParseExpression() : ParseOr();
        if (!IsOp(",")) return first;
        var items = new List<Expr> { first };
        while (SkipOp(","))
        {
            if (Current.Kind is TokenKind.BlockEnd or TokenKind.VariableEnd || IsOp(")") || IsName("if")) break;
            items.Add(allowCondExpr ? ParseExpression() : ParseOr());
        }
        return new ListExpr(items, IsTuple: true, offset);
    }

    private Expr ParseExpression()
    {
        Enter();
        int offset = Current.Offset;
        var e = ParseOr();
        while (SkipName("if"))
        {
            var test = ParseOr();
            Expr? otherwise = SkipName("else") ? ParseExpression() : null;
            e = new CondExpr(test, e, otherwise, offset);
        }
        _depth--;
        return e;
    }

    private Expr ParseOr()
    {
        var left = ParseAnd();
        int links = 0;
        while (IsName("or"))
        {
            Enter();
            links++;
            int at = Next().Offset;
            left = new BinaryExpr("or", left, ParseAnd(), at);
        }
        _depth -= links;
        return left;
    }

    private Expr ParseAnd()
    {
        var left = ParseNot();
        int links = 0;
        while (IsName("and"))
        {
            Enter();
            links++;
            int at = Next().Offset;
            left = new BinaryExpr("and", left, ParseNot(), at);
        }
        _depth -= links;
        return left;
    }

    private Expr ParseNot()
    {
        if (IsName("not"))
        {
            Enter();
            int at = Next().Offset;
            var e = new UnaryExpr("not", ParseNot(), at);
            _depth--;
            return e;
        }
        return ParseCompare();
    }

    private Expr ParseCompare()
    {
        int offset = Current.Offset;
        var first = ParseMath1();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            if (Current.Kind == TokenKind.Operator && Current.Value is "==" or "!=" or "<" or "<=" or ">" or ">=")
            {
                string op = Next().Value;
                rest.Add((op, ParseMath1()));
            }
            else if (IsName("in"))
            {
                _pos++;
                rest.Add(("in", ParseMath1()));
            }
            else if (IsName("not") && _tokens[_pos + 1].Kind == TokenKind.Name && _tokens[_pos + 1].Value == "in")
            {
                _pos += 2;
                rest.Add(("notin", ParseMath1()));
            }
            else break;
        }
        return rest.Count == 0 ? first : new CompareExpr(first, rest, offset);
    }

    private Expr ParseMath1()
    {
        var left = ParseConcat();
        int links = 0;
        while (IsOp("+") || IsOp("-"))
        {
            Enter();
            links++;
            var t = Next();
            left = new BinaryExpr(t.Value, left, ParseConcat(), t.Offset);
        }
        _depth -= links;
        return left;
    }

    private Expr ParseConcat()
    {
        var left = ParseMath2();
        int links = 0;
        while (IsOp("~"))
        {
            Enter();
            links++;
            var t = Next();
            left = new BinaryExpr("~", left, ParseMath2(), t.Offset);
        }
        _depth -= links;
        return left;
    }

    private Expr ParseMath2()
    {
        var left = ParsePow();
        int links = 0;
        while (Current.Kind == TokenKind.Operator && Current.Value is "*" or "/" or "//" or "%")
        {
            Enter();
            links++;
            var t = Next();
            left = new BinaryExpr(t.Value, left, ParsePow(), t.Offset);
        }
        _depth -= links;
        return left;
    }

    private Expr ParsePow()
    {
        var left = ParseUnary(withFilter: true);
        int links = 0;
        while (IsOp("**"))
        {
            Enter();
            links++;
            var t = Next();
            left = new BinaryExpr("**", left, ParseUnary(withFilter: true), t.Offset);
        }
        _depth -= links;
        return left;
    }

    private Expr ParseUnary(bool withFilter)
    {
        Enter();
        Expr node;
        if (IsOp("-") || IsOp("+"))
        {
            var t = Next();
            node = new UnaryExpr(t.Value, ParseUnary(withFilter: false), t.Offset);
        }
        else
        {
            node = ParsePostfix(ParsePrimary());
        }
        if (withFilter) node = ParseFilterExpr(node);
        _depth--;
        return node;
    }

    private Expr ParsePrimary()
    {
        var t = Current;
        switch (t.Kind)
        {
            case TokenKind.Name:
                _pos++;
                return t.Value switch
                {
                    "true" or "True" => new ConstExpr(true, t.Offset),
                    "false" or "False" => new ConstExpr(false, t.Offset),
                    "none" or "None" => new ConstExpr(null, t.Offset),
                    _ => NameRef(t),
                };
            case TokenKind.String:
                {
                    _pos++;
                    string s = t.Value;
                    while (Current.Kind == TokenKind.String) s += Next().Value; // 'a' 'b' == 'ab'
                    return new ConstExpr(s, t.Offset);
                }
            case TokenKind.Integer:
                _pos++;
                return new ConstExpr(t.IntegerValue, t.Offset);
            case TokenKind.Float:
                _pos++;
                return new ConstExpr(t.FloatValue, t.Offset);
            case TokenKind.Operator when t.Value == "(":
                {
                    _pos++;
                    if (SkipOp(")")) return new ListExpr([], IsTuple: true, t.Offset);
                    var first = ParseExpression();
                    if (SkipOp(")")) return first;
                    var items = new List<Expr> { first };
                    while (SkipOp(","))
                    {
                        if (IsOp(")")) break;
                        items.Add(ParseExpression());
                    }
                    ExpectOp(")");
                    return new ListExpr(items, IsTuple: true, t.Offset);
                }
            case TokenKind.Operator when t.Value == "[":
                {
                    _pos++;
                    var items = new List<Expr>();
                    while (!IsOp("]"))
                    {
                        if (items.Count > 0) ExpectOp(",");
                        if (IsOp("]")) break;
                        items.Add(ParseExpression());
                    }
                    ExpectOp("]");
                    return new ListExpr(items, IsTuple: false, t.Offset);
                }
            case TokenKind.Operator when t.Value == "{":
                {
                    _pos++;
                    var items = new List<(Expr, Expr)>();
                    while (!IsOp("}"))
                    {
                        if (items.Count > 0) ExpectOp(",");
                        if (IsOp("}")) break;
                        var key = ParseExpression();
                        ExpectOp(":");
                        items.Add((key, ParseExpression()));
                    }
                    ExpectOp("}");
                    return new DictExpr(items, t.Offset);
                }
            default:
                throw Error($"unexpected {Describe(t)}");
        }
    }

    private NameExpr NameRef(Token t)
    {
        _macroNames?.Add(t.Value);
        return new NameExpr(t.Value, t.Offset);
    }

    private Expr ParsePostfix(Expr node)
    {
        int links = 0;
        while (true)
        {
            Enter();
            links++;
            if (IsOp("."))
            {
                var dot = Next();
                if (Current.Kind == TokenKind.Name) node = new GetAttrExpr(node, Next().Value, dot.Offset);
                else if (Current.Kind == TokenKind.Integer) node = new GetItemExpr(node, new ConstExpr(Next().IntegerValue, dot.Offset), dot.Offset);
                else throw Error($"expected an attribute name after '.', got {Describe(Current)}");
            }
            else if (IsOp("["))
            {
                var open = Next();
                node = new GetItemExpr(node, ParseSubscript(), open.Offset);
                ExpectOp("]");
            }
            else if (IsOp("("))
            {
                int at = Current.Offset;
                node = new CallExpr(node, ParseCallArgs(), at);
            }
            else
            {
                _depth -= links;
                return node;
            }
        }
    }

    /// <summary>What is inside [...]: one index or slice, or several separated by commas (a tuple; `x[]` is `x[()]`), as jinja2 reads it.</summary>
    private Expr ParseSubscript()
    {
        int offset = Current.Offset;
        var items = new List<Expr>();
        while (!IsOp("]"))
        {
            if (items.Count > 0) ExpectOp(",");
            items.Add(ParseSubscribed());
        }
        if (items.Count == 1) return items[0];
        // jinja2 compiles x[1:, 0] to invalid Python and fails; refuse it here too
        if (items.OfType<SliceExpr>().FirstOrDefault() is { } slice) throw Error("a slice cannot be part of a tuple subscript", slice.Offset);
        return new ListExpr(items, IsTuple: true, offset);
    }

    private Expr ParseSubscribed()
    {
        int offset = Current.Offset;
        Expr? start = null;
        if (!IsOp(":"))
        {
            start = ParseExpression();
            if (!IsOp(":")) return start;
        }
        ExpectOp(":");
        Expr? stop = null, step = null;
        if (!IsOp("]") && !IsOp(",") && !IsOp(":")) stop = ParseExpression();
        if (SkipOp(":") && !IsOp("]") && !IsOp(",")) step = ParseExpression();
        return new SliceExpr(start, stop, step, offset);
    }

    private Arguments ParseCallArgs()
    {
        ExpectOp("(");
        var positional = new List<Expr>();
        var keyword = new List<(string, Expr)>();
        while (!IsOp(")"))
        {
            if (positional.Count + keyword.Count > 0) ExpectOp(",");
            if (IsOp(")")) break;
            if (IsOp("*") || IsOp("**")) throw Error("*args and **kwargs in calls are not supported");
            if (Current.Kind == TokenKind.Name && _tokens[_pos + 1].Kind == TokenKind.Operator && _tokens[_pos + 1].Value == "=")
            {
                string name = Next().Value;
                _pos++;
                if (keyword.Any(k => k.Item1 == name)) throw Error($"keyword argument '{name}' repeated");
                keyword.Add((name, ParseExpression()));
            }
            else
            {
                if (keyword.Count > 0) throw Error("positional argument follows keyword argument");
                positional.Add(ParseExpression());
            }
        }
        ExpectOp(")");
        return new Arguments(positional, keyword);
    }

    private Expr ParseFilterExpr(Expr node)
    {
        int links = 0;
        while (true)
        {
            Enter();
            links++;
            if (IsOp("|"))
            {
                _pos++;
                node = ParseFilterCall(node);
            }
            else if (IsName("is"))
            {
                node = ParseTest(node);
            }
            else if (IsOp("("))
            {
                int at = Current.Offset;
                node = new CallExpr(node, ParseCallArgs(), at);
            }
            else
            {
                _depth -= links;
                return node;
            }
        }
    }

    private FilterExpr ParseFilterCall(Expr? value)
    {
        int offset = Current.Offset;
        string name = ExpectName();
        while (IsOp(".")) { _pos++; name += "." + ExpectName(); }
        var args = IsOp("(") ? ParseCallArgs() : Arguments.None;
        return new FilterExpr(value, name, args, offset);
    }

    private TestExpr ParseTest(Expr value)
    {
        int offset = Next().Offset; // 'is'
        bool negated = SkipName("not");
        int nameAt = Current.Offset;
        string name = ExpectName();
        while (IsOp(".")) { _pos++; name += "." + ExpectName(); }
        Arguments args = Arguments.None;
        if (IsOp("("))
        {
            args = ParseCallArgs();
        }
        else if ((Current.Kind is TokenKind.Name or TokenKind.String or TokenKind.Integer or TokenKind.Float || IsOp("[") || IsOp("{"))
                 && !(Current.Kind == TokenKind.Name && Current.Value is "else" or "or" or "and"))
        {
            // jinja2: one argument without parentheses, `x is divisibleby 3`, `x is equalto 'user'`
            if (IsName("is")) throw Error("tests cannot be chained with 'is'");
            args = new Arguments([ParsePostfix(ParsePrimary())], []);
        }
        return new TestExpr(value, name, args, negated, offset) { NameOffset = nameAt };
    }

    // ---- unknown filters and tests ------------------------------------------------------------------------------
    //
    // jinja2 refuses an unknown filter or test when it compiles the template, except inside an `if` statement
    // (its test and branches) or a conditional expression, where the error waits until the branch runs; a for,
    // macro, with, set-block, filter or generation body starts a new frame where the check is strict again.
    // So a template that uses, say, `wordwrap` only on its tools path still parses, as it does for HF.

    private void CheckNames(IReadOnlyList<Stmt> body, bool soft)
    {
        foreach (var stmt in body) CheckNames(stmt, soft);
    }

    private void CheckNames(Stmt stmt, bool soft)
    {
        switch (stmt)
        {
            case OutputStmt o: CheckNames(o.Value, soft); break;
            case IfStmt i:
                foreach (var (test, body) in i.Branches) { CheckNames(test, true); CheckNames(body, true); }
                if (i.Else is not null) CheckNames(i.Else, true);
                break;
            case ForStmt f:
                CheckNames(f.Iterable, soft);
                if (f.Filter is not null) CheckNames(f.Filter, false);
                CheckNames(f.Body, false);
                if (f.Else is not null) CheckNames(f.Else, false);
                break;
            case SetStmt st: CheckNames(st.Value, soft); break;
            case SetBlockStmt sb:
                foreach (var filter in sb.Filters) CheckNames(filter, false);
                CheckNames(sb.Body, false);
                break;
            case MacroStmt m:
                foreach (var (_, dflt) in m.Parameters) if (dflt is not null) CheckNames(dflt, false);
                CheckNames(m.Body, false);
                break;
            case WithStmt w:
                foreach (var (_, value) in w.Assignments) CheckNames(value, soft);
                CheckNames(w.Body, false);
                break;
            case FilterBlockStmt fb:
                foreach (var filter in fb.Filters) CheckNames(filter, false);
                CheckNames(fb.Body, false);
                break;
            case GenerationStmt g: CheckNames(g.Body, false); break;
        }
    }

    private void CheckNames(Expr? e, bool soft)
    {
        switch (e)
        {
            case null or ConstExpr or NameExpr: break;
            case ListExpr l: foreach (var item in l.Items) CheckNames(item, soft); break;
            case DictExpr d: foreach (var (k, v) in d.Items) { CheckNames(k, soft); CheckNames(v, soft); } break;
            case GetAttrExpr g: CheckNames(g.Target, soft); break;
            case GetItemExpr gi: CheckNames(gi.Target, soft); CheckNames(gi.Index, soft); break;
            case SliceExpr sl: CheckNames(sl.Start, soft); CheckNames(sl.Stop, soft); CheckNames(sl.Step, soft); break;
            case CallExpr c: CheckNames(c.Callee, soft); CheckNames(c.Args, soft); break;
            case FilterExpr f:
                if (!soft && !Builtins.IsFilter(f.Name)) throw Error($"no filter named '{f.Name}' (not supported by Duet's chat templates)", f.Offset);
                CheckNames(f.Value, soft);
                CheckNames(f.Args, soft);
                break;
            case TestExpr t:
                if (!soft && !Builtins.IsTest(t.Name)) throw Error($"no test named '{t.Name}' (not supported by Duet's chat templates)", t.NameOffset);
                CheckNames(t.Value, soft);
                CheckNames(t.Args, soft);
                break;
            case UnaryExpr u: CheckNames(u.Operand, soft); break;
            case BinaryExpr b: CheckNames(b.Left, soft); CheckNames(b.Right, soft); break;
            case CompareExpr ce: CheckNames(ce.First, soft); foreach (var (_, operand) in ce.Rest) CheckNames(operand, soft); break;
            case CondExpr cond: CheckNames(cond.Test, true); CheckNames(cond.Then, true); CheckNames(cond.Else, true); break;
        }
    }

    private void CheckNames(Arguments args, bool soft)
    {
        foreach (var p in args.Positional) CheckNames(p, soft);
        foreach (var (_, value) in args.Keyword) CheckNames(value, soft);
    }
}
