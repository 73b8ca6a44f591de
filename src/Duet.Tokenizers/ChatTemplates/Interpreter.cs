// Evaluates a parsed template for one Render call. Scoping follows jinja2: the template's top level writes
// into the render context (so {% set messages = messages[1:] %} shadows the argument), each loop iteration
// and each macro call has its own scope (a set inside a loop does not leak out; namespace() objects carry
// values across), `if` has none. Every loop iteration, macro call, built list element and 256 characters of
// built text cost a step; limits turn runaway templates into ChatTemplateException instead of a hang, and
// RuntimeHelpers.EnsureSufficientExecutionStack guards the .NET stack against deep recursion.
using System.Runtime.CompilerServices;
using System.Text;

namespace Duet.Tokenizers.ChatTemplates;

internal sealed class Scope(Scope? parent)
{
    public Dictionary<string, object?> Vars { get; } = new(StringComparer.Ordinal);
    public Scope? Parent { get; } = parent;

    public bool TryGet(string name, out object? value)
    {
        for (var s = this; s is not null; s = s.Parent)
            if (s.Vars.TryGetValue(name, out value)) return true;
        value = null;
        return false;
    }
}

internal sealed class Interpreter(ChatTemplateLimits limits, TimeProvider time)
{
    private enum Flow { Normal, Break, Continue }

    private long _steps;
    private int _callDepth;
    private int _offset;
    private DateTime? _now;

    public int MaxLength => limits.MaxOutputChars;

    /// <summary>Local time of the first strftime_now call (one clock reading per render).</summary>
    public DateTime Now => _now ??= time.GetLocalNow().DateTime;

    public string Render(TemplateBody body, Dictionary<string, object?> vars)
    {
        var globals = new Scope(null);
        Builtins.AddGlobals(globals.Vars);
        var top = new Scope(globals);
        foreach (var (k, v) in vars) top.Vars[k] = v;
        var output = new StringBuilder();
        try
        {
            ExecBody(body.Statements, top, output);
        }
        catch (TemplateRaisedError e)
        {
            var (line, column) = body.Lexer.Position(_offset);
            throw new ChatTemplateException(e.Message, line, column, raisedByTemplate: true, e);
        }
        catch (TemplateRuntimeError e)
        {
            var (line, column) = body.Lexer.Position(_offset);
            throw new ChatTemplateException($"chat template error at line {line}, column {column}: {e.Kind}: {e.Message}", line, column, false, e);
        }
        catch (InsufficientExecutionStackException e)
        {
            var (line, column) = body.Lexer.Position(_offset);
            throw new ChatTemplateException($"chat template error at line {line}, column {column}: recursion too deep", line, column, false, e);
        }
        catch (Exception e) when (e is not (OutOfMemoryException or ChatTemplateException))
        {
            // A renderer bug must not escape as some other exception type to a server rendering untrusted templates.
            var (line, column) = body.Lexer.Position(_offset);
            throw new ChatTemplateException($"chat template error at line {line}, column {column}: internal error ({e.GetType().Name}: {e.Message})", line, column, false, e);
        }
        return output.ToString();
    }

    // ---- limits -------------------------------------------------------------------------------------------------

    public void Charge(long steps)
    {
        _steps += steps;
        if (_steps > limits.MaxSteps)
            throw new TemplateRuntimeError("LimitError", $"the template ran more than {limits.MaxSteps} steps (loop iterations, calls, built items)");
    }

    public void CheckLength(int length)
    {
        if (length > limits.MaxOutputChars)
            throw new TemplateRuntimeError("LimitError", $"a string of the template grew past the render limit of {limits.MaxOutputChars} characters");
    }

    public string CheckString(string s)
    {
        CheckLength(s.Length);
        Charge(1 + s.Length / 256);
        return s;
    }

    /// <summary>Python list(iterable), charging a step per element.</summary>
    public List<object?> Materialize(object? iterable)
    {
        if (iterable is PyRange r)
        {
            Charge(r.Count); // before enumerating, so a long range fails at once
            var numbers = new List<object?>((int)Math.Min(r.Count, int.MaxValue));
            for (long i = 0; i < r.Count; i++) numbers.Add(r[i]);
            return numbers;
        }
        var items = new List<object?>();
        foreach (var item in PyValues.Iterate(iterable))
        {
            Charge(1);
            items.Add(item);
        }
        return items;
    }

    private void Emit(StringBuilder output, string s)
    {
        if (s.Length == 0) return;
        CheckLength(output.Length + s.Length);
        Charge(1 + s.Length / 256);
        output.Append(s);
    }

    // ---- statements ---------------------------------------------------------------------------------------------

    private Flow ExecBody(IReadOnlyList<Stmt> body, Scope scope, StringBuilder output)
    {
        foreach (var stmt in body)
        {
            var flow = Exec(stmt, scope, output);
            if (flow != Flow.Normal) return flow;
        }
        return Flow.Normal;
    }

    private Flow Exec(Stmt stmt, Scope scope, StringBuilder output)
    {
        RuntimeHelpers.EnsureSufficientExecutionStack();
        _offset = stmt.Offset;
        switch (stmt)
        {
            case TextStmt t:
                Emit(output, t.Text);
                return Flow.Normal;
            case OutputStmt o:
                Emit(output, PyValues.Str(Eval(o.Value, scope)));
                return Flow.Normal;
            case IfStmt i:
                foreach (var (test, body) in i.Branches)
                    if (PyValues.Truthy(Eval(test, scope))) return ExecBody(body, scope, output);
                return i.Else is null ? Flow.Normal : ExecBody(i.Else, scope, output);
            case ForStmt f:
                return ExecFor(f, scope, output);
            case SetStmt s:
                Assign(s.Target, Eval(s.Value, scope), scope);
                return Flow.Normal;
            case SetBlockStmt sb:
                {
                    var captured = new StringBuilder();
                    var flow = ExecBody(sb.Body, scope, captured);
                    object? value = captured.ToString();
                    foreach (var filter in sb.Filters) value = ApplyFilter(filter, value, scope);
                    Assign(sb.Target, value, scope);
                    return flow;
                }
            case MacroStmt m:
                scope.Vars[m.Name] = new MacroValue(m, scope);
                return Flow.Normal;
            case WithStmt w:
                {
                    var inner = new Scope(scope);
                    foreach (var (target, value) in w.Assignments) Assign(target, Eval(value, scope), inner);
                    return ExecBody(w.Body, inner, output);
                }
            case FilterBlockStmt fb:
                {
                    var captured = new StringBuilder();
                    var flow = ExecBody(fb.Body, scope, captured);
                    object? value = captured.ToString();
                    foreach (var filter in fb.Filters) value = ApplyFilter(filter, value, scope);
                    // jinja2 writes a filter block's result as it is; only text can be written
                    if (value is not string text) throw new TemplateRuntimeError("TypeError", $"sequence item 0: expected str instance, {PyValues.TypeName(value)} found");
                    Emit(output, text);
                    return flow;
                }
            case GenerationStmt g:
                return ExecBody(g.Body, scope, output);
            case BreakStmt:
                return Flow.Break;
            case ContinueStmt:
                return Flow.Continue;
            default:
                throw new InvalidOperationException(stmt.GetType().Name);
        }
    }

    private Flow ExecFor(ForStmt f, Scope scope, StringBuilder output)
    {
        var items = Materialize(Eval(f.Iterable, scope));
        if (f.Filter is not null)
        {
            var kept = new List<object?>(items.Count);
            foreach (var item in items)
            {
                var s = new Scope(scope);
                Assign(f.Target, item, s);
                if (PyValues.Truthy(Eval(f.Filter, s))) kept.Add(item);
            }
            items = kept;
        }
        if (items.Count == 0)
            return f.Else is null ? Flow.Normal : ExecBody(f.Else, scope, output);
        var loop = new LoopContext(items);
        for (int i = 0; i < items.Count; i++)
        {
            Charge(1);
            loop.Index0 = i;
            var s = new Scope(scope);
            s.Vars["loop"] = loop;
            Assign(f.Target, items[i], s);
            if (ExecBody(f.Body, s, output) == Flow.Break) break;
        }
        return Flow.Normal;
    }

    private void Assign(Target target, object? value, Scope scope)
    {
        switch (target)
        {
            case NameTarget n:
                scope.Vars[n.Name] = value;
                break;
            case AttrTarget a:
                if (!scope.TryGet(a.Name, out var obj) || obj is not PyNamespace ns)
                    throw new TemplateRuntimeError("TemplateRuntimeError", "cannot assign attribute on non-namespace object");
                ns.Attributes[a.Attr] = value;
                break;
            case TupleTarget t:
                {
                    var items = Materialize(value);
                    if (items.Count < t.Items.Count)
                        throw new TemplateRuntimeError("ValueError", $"not enough values to unpack (expected {t.Items.Count}, got {items.Count})");
                    if (items.Count > t.Items.Count)
                        throw new TemplateRuntimeError("ValueError", $"too many values to unpack (expected {t.Items.Count})");
                    for (int i = 0; i < items.Count; i++) Assign(t.Items[i], items[i], scope);
                    break;
                }
        }
    }

    // ---- expressions --------------------------------------------------------------------------------------------

    private object? Eval(Expr expr, Scope scope)
    {
        RuntimeHelpers.EnsureSufficientExecutionStack();
        _offset = expr.Offset;
        switch (expr)
        {
            case ConstExpr c:
                return c.Value;
            case NameExpr n:
                return scope.TryGet(n.Name, out var v) ? v : Undefined.Named(n.Name);
            case ListExpr l:
                {
                    var items = new List<object?>(l.Items.Count);
                    foreach (var item in l.Items) items.Add(Eval(item, scope));
                    Charge(items.Count);
                    return new PyList(items, l.IsTuple ? SeqKind.Tuple : SeqKind.List);
                }
            case DictExpr d:
                {
                    var dict = new PyDict();
                    foreach (var (k, val) in d.Items)
                    {
                        var key = Eval(k, scope);
                        dict.Set(key, Eval(val, scope));
                    }
                    Charge(d.Items.Count);
                    return dict;
                }
            case GetAttrExpr g:
                {
                    var target = Eval(g.Target, scope);
                    _offset = g.Offset;
                    return Builtins.GetAttr(target, g.Name);
                }
            case GetItemExpr gi:
                {
                    var target = Eval(gi.Target, scope);
                    if (target is Undefined u) throw u.Fail();
                    if (gi.Index is SliceExpr sl)
                    {
                        var start = sl.Start is null ? null : Eval(sl.Start, scope);
                        var stop = sl.Stop is null ? null : Eval(sl.Stop, scope);
                        var step = sl.Step is null ? null : Eval(sl.Step, scope);
                        _offset = gi.Offset;
                        var result = Builtins.Slice(target, start, stop, step);
                        if (result is PyList pl) Charge(pl.Count);
                        else if (result is string s) CheckString(s);
                        return result;
                    }
                    var key = Eval(gi.Index, scope);
                    _offset = gi.Offset;
                    return Builtins.GetItem(target, key);
                }
            case CallExpr call:
                {
                    var callee = Eval(call.Callee, scope);
                    var args = EvalArgs(call.Args, scope);
                    _offset = call.Offset;
                    return Call(callee, args);
                }
            case FilterExpr f:
                return ApplyFilter(f, Eval(f.Value!, scope), scope);
            case TestExpr t:
                {
                    var value = Eval(t.Value, scope);
                    var args = EvalArgs(t.Args, scope);
                    _offset = t.Offset;
                    bool r = Builtins.Test(this, t.Name, value, args);
                    return t.Negated ? !r : r;
                }
            case UnaryExpr u:
                {
                    var operand = Eval(u.Operand, scope);
                    _offset = u.Offset;
                    return u.Op switch
                    {
                        "not" => !PyValues.Truthy(operand),
                        "-" => PyOps.Negate(operand),
                        _ => PyOps.Plus(operand),
                    };
                }
            case BinaryExpr b:
                {
                    var left = Eval(b.Left, scope);
                    if (b.Op == "and") return PyValues.Truthy(left) ? Eval(b.Right, scope) : left;
                    if (b.Op == "or") return PyValues.Truthy(left) ? left : Eval(b.Right, scope);
                    var right = Eval(b.Right, scope);
                    _offset = b.Offset;
                    if (b.Op == "~")
                    {
                        string l = PyValues.Str(left), r = PyValues.Str(right);
                        CheckLength(l.Length + r.Length);
                        return CheckString(string.Concat(l, r));
                    }
                    if (left is string ls && right is string rs && b.Op == "+") CheckLength(ls.Length + rs.Length);
                    var result = PyOps.Binary(b.Op, left, right, MaxLength);
                    if (result is string s) CheckString(s);
                    else if (result is PyList pl) Charge(pl.Count);
                    return result;
                }
            case CompareExpr c:
                {
                    var left = Eval(c.First, scope);
                    foreach (var (op, operandExpr) in c.Rest)
                    {
                        var right = Eval(operandExpr, scope);
                        _offset = operandExpr.Offset;
                        bool ok = op switch
                        {
                            "==" => PyValues.Equal(left, right),
                            "!=" => !PyValues.Equal(left, right),
                            "in" => PyValues.Contains(right, left),
                            "notin" => !PyValues.Contains(right, left),
                            _ => PyValues.Order(left, right, op),
                        };
                        if (!ok) return false;
                        left = right;
                    }
                    return true;
                }
            case CondExpr ce:
                if (PyValues.Truthy(Eval(ce.Test, scope))) return Eval(ce.Then, scope);
                return ce.Else is null ? new Undefined("the inline if-expression evaluated to false and no else section was defined.") : Eval(ce.Else, scope);
            default:
                throw new InvalidOperationException(expr.GetType().Name);
        }
    }

    private object? ApplyFilter(FilterExpr f, object? value, Scope scope)
    {
        var args = EvalArgs(f.Args, scope);
        _offset = f.Offset;
        return Builtins.Filter(this, f.Name, value, args);
    }

    private CallArgs EvalArgs(Arguments args, Scope scope)
    {
        if (args.Positional.Count == 0 && args.Keyword.Count == 0) return CallArgs.Empty;
        var positional = new List<object?>(args.Positional.Count);
        foreach (var p in args.Positional) positional.Add(Eval(p, scope));
        var keyword = new List<(string, object?)>(args.Keyword.Count);
        foreach (var (name, value) in args.Keyword) keyword.Add((name, Eval(value, scope)));
        return new CallArgs(positional, keyword);
    }

    public object? Call(object? callee, CallArgs args) => callee switch
    {
        Undefined u => throw u.Fail(),
        BuiltinFunction f => f.Body(this, args),
        BoundMethod m => Builtins.CallMethod(this, m.Receiver, m.Name, args),
        MacroValue macro => CallMacro(macro, args),
        _ => throw new TemplateRuntimeError("TypeError", $"'{PyValues.TypeName(callee)}' object is not callable"),
    };

    /// <summary>A macro call: its own scope over the scope it was defined in; missing arguments are undefined, surplus ones an error unless the body reads varargs / kwargs (jinja2).</summary>
    private string CallMacro(MacroValue macro, CallArgs args)
    {
        if (++_callDepth > limits.MaxCallDepth)
            throw new TemplateRuntimeError("LimitError", $"macro calls nested deeper than {limits.MaxCallDepth}");
        Charge(1);
        var node = macro.Node;
        var scope = new Scope(macro.Closure);
        var parameters = node.Parameters;
        var extra = new List<object?>();
        for (int i = 0; i < args.Positional.Count; i++)
        {
            if (i < parameters.Count) scope.Vars[parameters[i].Name] = args.Positional[i];
            else extra.Add(args.Positional[i]);
        }
        var kwargs = new PyDict();
        foreach (var (name, value) in args.Keyword)
        {
            int k = -1;
            for (int j = 0; j < parameters.Count; j++) if (parameters[j].Name == name) k = j;
            if (k < 0) kwargs.Set(name, value);
            else if (k < args.Positional.Count) throw new TemplateRuntimeError("TypeError", $"macro '{node.Name}' got multiple values for argument '{name}'");
            else scope.Vars[name] = value;
        }
        if (extra.Count > 0 && !node.UsesVarargs)
            throw new TemplateRuntimeError("TypeError", $"macro '{node.Name}' takes not more than {parameters.Count} argument(s)");
        if (kwargs.Count > 0 && !node.UsesKwargs)
            throw new TemplateRuntimeError("TypeError", $"macro '{node.Name}' takes no keyword argument '{kwargs.Keys.First()}'");
        foreach (var (name, dflt) in parameters)
        {
            if (scope.Vars.ContainsKey(name)) continue;
            scope.Vars[name] = dflt is null ? new Undefined($"parameter '{name}' was not provided") : Eval(dflt, scope);
        }
        scope.Vars["varargs"] = new PyList(extra, SeqKind.Tuple);
        scope.Vars["kwargs"] = kwargs;
        var output = new StringBuilder();
        int saved = _offset;
        ExecBody(node.Body, scope, output);
        _offset = saved;
        _callDepth--;
        return output.ToString();
    }
}
