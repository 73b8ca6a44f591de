// A byte-level pushdown automaton for compact JSON that follows a compiled schema. A state is a set of
// alternative stacks (anyOf keeps several alive until a byte decides); stacks are persistent linked lists of
// immutable frames, so trying a byte on a state never changes it and a trie walk can share prefixes.
// Every frame also knows its shortest completion (Close), which gives the text that finishes the document
// soonest: the constraint switches to it when the token budget runs short, so output always ends valid.
// No whitespace is generated between tokens (compact JSON), so a model cannot loop on whitespace.
using System.Text;

namespace Duet.Inference.Constrained;

internal sealed class JStack(Frame top, JStack? rest)
{
    public readonly Frame Top = top;
    public readonly JStack? Rest = rest;
    public readonly int Depth = rest is null ? 1 : rest.Depth + 1;

    /// <summary>The shortest bytes that complete the whole document from here.</summary>
    public byte[] Close()
    {
        var bytes = new List<byte>(Top.CloseBytes());
        for (var s = Rest; s is not null; s = s.Rest) bytes.AddRange(Encoding.UTF8.GetBytes(s.Top.CloseAfterChild()));
        return bytes.ToArray();
    }
}

internal abstract class Frame
{
    public const int MaxDepth = 48;

    /// <summary>Tries byte <paramref name="b"/> on this frame (the top of a stack whose other frames are <paramref name="rest"/>), adding the stacks that accept it.</summary>
    public abstract void Feed(JStack? rest, byte b, List<JStack> output);
    /// <summary>The shortest text that completes this frame's value.</summary>
    public abstract string Close();
    /// <summary>Close() as bytes (a string frame may owe raw UTF-8 continuation bytes first).</summary>
    public virtual byte[] CloseBytes() => Encoding.UTF8.GetBytes(Close());
    /// <summary>When a child value of this frame has just completed: the frame as it continues.</summary>
    public virtual Frame ChildDone() => throw new InvalidOperationException($"{GetType().Name} has no child values");
    /// <summary>The shortest text after a child value of this frame completes.</summary>
    public virtual string CloseAfterChild() => ChildDone().Close();

    /// <summary>This frame's value is complete: pop it, tell the parent, and give the parent the byte if it was not consumed.</summary>
    protected static void Done(JStack? rest, byte? refeed, List<JStack> output)
    {
        if (rest is null) return;
        var parent = new JStack(rest.Top.ChildDone(), rest.Rest);
        if (refeed is byte b) parent.Top.Feed(parent.Rest, b, output);
        else output.Add(parent);
    }

    protected static void Push(JStack? rest, Frame self, Frame child, byte? feed, List<JStack> output)
    {
        var below = new JStack(self, rest);
        if (below.Depth >= MaxDepth) return;
        if (feed is byte b) child.Feed(below, b, output);
        else output.Add(new JStack(child, below));
    }

    public static bool IsDigit(byte b) => b is >= (byte)'0' and <= (byte)'9';
}

/// <summary>The bottom of every stack: the document is one value, then nothing.</summary>
internal sealed class RootFrame(bool done) : Frame
{
    public bool IsDone => done;
    public override void Feed(JStack? rest, byte b, List<JStack> output) { }
    public override string Close() => "";
    public override Frame ChildDone() => new RootFrame(true);
    public override string CloseAfterChild() => "";
}

/// <summary>Expecting the first byte of a value of <paramref name="node"/>.</summary>
internal sealed class ValueFrame(SchemaNode node) : Frame
{
    private static readonly SchemaNode s_any = SchemaNode.Any();
    private static readonly SchemaNode s_anyObject = new() { Kind = NodeKind.Object, AnyObject = true };
    private static readonly SchemaNode s_anyArray = new() { Kind = NodeKind.Array, Items = s_any };
    private static readonly SchemaNode s_anyString = new() { Kind = NodeKind.String };

    public override string Close() => node.MinText ?? "0";

    public override void Feed(JStack? rest, byte b, List<JStack> output)
    {
        switch (node.Kind)
        {
            case NodeKind.Any:
                switch (b)
                {
                    case (byte)'{': Replace(rest, new ObjectFrame(s_anyObject, ObjectFrame.Stage.Open, 0, []), output); break;
                    case (byte)'[': Replace(rest, new ArrayFrame(s_anyArray, ArrayFrame.Stage.Open, 0), output); break;
                    case (byte)'"': Replace(rest, new StringFrame(s_anyString), output); break;
                    case (byte)'t': new LiteralFrame(["true"], 0).Feed(rest, b, output); break;
                    case (byte)'f': new LiteralFrame(["false"], 0).Feed(rest, b, output); break;
                    case (byte)'n': new LiteralFrame(["null"], 0).Feed(rest, b, output); break;
                    default: if (b == '-' || IsDigit(b)) new NumberFrame(false, NumberFrame.State.Begin, 0).Feed(rest, b, output); break;
                }
                break;
            case NodeKind.Object:
                if (b == '{') Replace(rest, new ObjectFrame(node, ObjectFrame.Stage.Open, 0, []), output);
                break;
            case NodeKind.Array:
                if (b == '[') Replace(rest, new ArrayFrame(node, ArrayFrame.Stage.Open, 0), output);
                break;
            case NodeKind.String:
                if (b == '"') Replace(rest, new StringFrame(node), output);
                break;
            case NodeKind.Number:
            case NodeKind.Integer:
                new NumberFrame(node.Kind == NodeKind.Integer, NumberFrame.State.Begin, 0).Feed(rest, b, output);
                break;
            case NodeKind.Boolean: new LiteralFrame(["true", "false"], 0).Feed(rest, b, output); break;
            case NodeKind.Null: new LiteralFrame(["null"], 0).Feed(rest, b, output); break;
            case NodeKind.Literals: new LiteralFrame(node.Literals, 0).Feed(rest, b, output); break;
            case NodeKind.AnyOf:
                foreach (var o in node.Options) new ValueFrame(o).Feed(rest, b, output);
                break;
        }
    }

    private static void Replace(JStack? rest, Frame f, List<JStack> output)
    {
        if (rest is null || rest.Depth < MaxDepth) output.Add(new JStack(f, rest));
    }
}

/// <summary>Matching one of a set of literal texts (enum, const, true/false/null), <paramref name="pos"/> bytes in.</summary>
internal sealed class LiteralFrame(List<string> candidates, int pos) : Frame
{
    // Literals are compact JSON; their UTF-8 bytes are matched one by one.
    private readonly List<byte[]> _bytes = candidates.Select(Encoding.UTF8.GetBytes).ToList();

    private LiteralFrame(List<string> candidates, List<byte[]> bytes, int pos) : this(candidates, pos) => _bytes = bytes;

    public override string Close()
    {
        string? best = null;
        foreach (var c in _bytes)
        {
            var rest = Encoding.UTF8.GetString(c, pos, c.Length - pos);
            if (best is null || rest.Length < best.Length) best = rest;
        }
        return best ?? "";
    }

    // Raw bytes: the literal may be cut inside a multi-byte character.
    public override byte[] CloseBytes()
    {
        byte[]? best = null;
        foreach (var c in _bytes)
            if (best is null || c.Length - pos < best.Length) best = c[pos..];
        return best ?? [];
    }

    public override void Feed(JStack? rest, byte b, List<JStack> output)
    {
        List<string>? next = null;
        List<byte[]>? nextBytes = null;
        bool complete = false;
        for (int i = 0; i < _bytes.Count; i++)
        {
            var c = _bytes[i];
            if (c.Length == pos) complete = true;
            else if (c[pos] == b) { (next ??= []).Add(candidates[i]); (nextBytes ??= []).Add(c); }
        }
        if (next is not null) output.Add(new JStack(new LiteralFrame(next, nextBytes!, pos + 1), rest));
        if (complete) Done(rest, b, output); // a finished literal: the byte belongs to what follows
    }

    /// <summary>True when some candidate has been matched whole (the value may end here).</summary>
    public bool Complete => _bytes.Any(c => c.Length == pos);
}

internal sealed class NumberFrame(bool integer, NumberFrame.State state, int length) : Frame
{
    public enum State { Begin, Minus, Zero, Int, Dot, Frac, Exp, ExpSign, ExpDigits }
    private const int MaxLength = 24; // digits enough for any double; a model cannot write an endless number

    public bool Terminal => state is State.Zero or State.Int or State.Frac or State.ExpDigits;

    public override string Close() => Terminal ? "" : "0";

    public override void Feed(JStack? rest, byte b, List<JStack> output)
    {
        State? next = state switch
        {
            State.Begin => b == '-' ? State.Minus : b == '0' ? State.Zero : IsDigit(b) ? State.Int : null,
            State.Minus => b == '0' ? State.Zero : IsDigit(b) ? State.Int : null,
            State.Zero => !integer && b == '.' ? State.Dot : !integer && (b == 'e' || b == 'E') ? State.Exp : null,
            State.Int => IsDigit(b) ? State.Int : !integer && b == '.' ? State.Dot : !integer && (b == 'e' || b == 'E') ? State.Exp : null,
            State.Dot => IsDigit(b) ? State.Frac : null,
            State.Frac => IsDigit(b) ? State.Frac : b == 'e' || b == 'E' ? State.Exp : null,
            State.Exp => b == '+' || b == '-' ? State.ExpSign : IsDigit(b) ? State.ExpDigits : null,
            State.ExpSign => IsDigit(b) ? State.ExpDigits : null,
            State.ExpDigits => IsDigit(b) ? State.ExpDigits : null,
            _ => null,
        };
        // Past MaxLength only the bytes an unfinished number still owes ("1e" needs a digit) are taken.
        if (next is State n && (length < MaxLength || !Terminal)) output.Add(new JStack(new NumberFrame(integer, n, length + 1), rest));
        else if (next is null && Terminal) Done(rest, b, output);
    }
}

internal sealed class StringFrame : Frame
{
    private readonly SchemaNode _node;
    private readonly int _count;      // characters so far (a character being decoded counts)
    private readonly int _escape;     // 0 none, 1 after '\', 2..5 hex digits of \uXXXX still to come (5 = four)
    private readonly int _pending;    // UTF-8 continuation bytes still to come
    private readonly byte _lo, _hi;   // the range of the next continuation byte
    private readonly bool _surrogateCheck; // after "\uD": the next hex digit must be 0-7 (no surrogate escapes)

    public StringFrame(SchemaNode node) : this(node, 0, 0, 0, 0x80, 0xBF, false) { }

    private StringFrame(SchemaNode node, int count, int escape, int pending, byte lo, byte hi, bool surrogateCheck)
    {
        _node = node; _count = count; _escape = escape; _pending = pending; _lo = lo; _hi = hi; _surrogateCheck = surrogateCheck;
    }

    // The escape in progress completed ("\n", "\u0000"), padding up to minLength, the closing quote.
    public override string Close()
    {
        var sb = new StringBuilder();
        if (_escape == 1) sb.Append('n');
        else if (_escape >= 2) sb.Append('0', _escape - 1);
        if (_count < _node.MinLength) sb.Append('a', _node.MinLength - _count);
        return sb.Append('"').ToString();
    }

    public override byte[] CloseBytes()
    {
        var bytes = new List<byte>();
        if (_pending > 0) { bytes.Add(_lo); for (int i = 1; i < _pending; i++) bytes.Add(0x80); }
        bytes.AddRange(Encoding.UTF8.GetBytes(Close()));
        return bytes.ToArray();
    }

    /// <summary>Between characters, not in an escape: where plain content bytes leave the state as it is.</summary>
    public bool Plain => _escape == 0 && _pending == 0;

    /// <summary>True when <paramref name="chars"/> more characters stay within maxLength.</summary>
    public bool RoomFor(int chars) => _node.MaxLength == int.MaxValue || _count + chars <= _node.MaxLength;

    public override void Feed(JStack? rest, byte b, List<JStack> output)
    {
        var n = _node;
        if (_pending > 0)
        {
            if (b >= _lo && b <= _hi) output.Add(new JStack(new StringFrame(n, _count, 0, _pending - 1, 0x80, 0xBF, false), rest));
            return;
        }
        if (_escape == 1)
        {
            if (b is (byte)'"' or (byte)'\\' or (byte)'/' or (byte)'b' or (byte)'f' or (byte)'n' or (byte)'r' or (byte)'t')
                output.Add(new JStack(new StringFrame(n, _count, 0, 0, 0x80, 0xBF, false), rest));
            else if (b == 'u') output.Add(new JStack(new StringFrame(n, _count, 5, 0, 0x80, 0xBF, false), rest));
            return;
        }
        if (_escape >= 2)
        {
            bool hex = IsDigit(b) || (b | 0x20) is >= (byte)'a' and <= (byte)'f';
            if (!hex) return;
            if (_surrogateCheck && !(b >= '0' && b <= '7')) return;  // \uD800-\uDFFF: lone surrogates make invalid text
            bool nextCheck = _escape == 5 && (b | 0x20) == 'd';
            output.Add(new JStack(new StringFrame(n, _count, _escape == 2 ? 0 : _escape - 1, 0, 0x80, 0xBF, nextCheck), rest));
            return;
        }
        if (b == '"')
        {
            if (_count >= n.MinLength) Done(rest, null, output);
            return;
        }
        if (_count >= n.MaxLength || b < 0x20) return;
        if (b == '\\') { output.Add(new JStack(new StringFrame(n, _count + 1, 1, 0, 0x80, 0xBF, false), rest)); return; }
        if (b < 0x80) { output.Add(new JStack(new StringFrame(n, _count + 1, 0, 0, 0x80, 0xBF, false), rest)); return; }
        // A UTF-8 lead byte: how many continuation bytes follow, and the range of the first (no overlongs, no surrogates, <= U+10FFFF).
        (int pending, byte lo, byte hi) = b switch
        {
            >= 0xC2 and <= 0xDF => (1, (byte)0x80, (byte)0xBF),
            0xE0 => (2, (byte)0xA0, (byte)0xBF),
            0xED => (2, (byte)0x80, (byte)0x9F),
            >= 0xE1 and <= 0xEF => (2, (byte)0x80, (byte)0xBF),
            0xF0 => (3, (byte)0x90, (byte)0xBF),
            >= 0xF1 and <= 0xF3 => (3, (byte)0x80, (byte)0xBF),
            0xF4 => (3, (byte)0x80, (byte)0x8F),
            _ => (0, (byte)0, (byte)0),
        };
        if (pending > 0) output.Add(new JStack(new StringFrame(n, _count + 1, 0, pending, lo, hi, false), rest));
    }
}

internal sealed class ObjectFrame(SchemaNode node, ObjectFrame.Stage stage, int next, int[] candidates, int keyPos = 0, int chosen = -1) : Frame
{
    public enum Stage { Open, Key, AnyKey, Colon, Value, AfterValue, Comma }

    private static readonly SchemaNode s_anyKey = new() { Kind = NodeKind.String };
    // The property names as they appear between the quotes (JSON-escaped, UTF-8), kept on the node (a server
    // compiles a schema per request; a global cache would only grow).
    private byte[][] Keys => node.KeyBytes ??= node.Properties
        .Select(p => Encoding.UTF8.GetBytes(SchemaCompiler.Compact(System.Text.Json.JsonSerializer.SerializeToElement(p.Name))[1..^1])).ToArray();

    // Keys allowed from index `from`: declared order, optional ones may be skipped, a required one may not.
    private int[] Allowed(int from)
    {
        var list = new List<int>();
        for (int i = from; i < node.Properties.Count; i++)
        {
            list.Add(i);
            if (node.Properties[i].Required) break;
        }
        return list.ToArray();
    }

    private bool RequiredFrom(int from)
    {
        for (int i = from; i < node.Properties.Count; i++) if (node.Properties[i].Required) return true;
        return false;
    }

    private string RequiredText(int from, bool leadingComma)
    {
        var sb = new StringBuilder();
        for (int i = from; i < node.Properties.Count; i++)
        {
            var (name, child, required) = node.Properties[i];
            if (!required) continue;
            if (leadingComma || sb.Length > 0) sb.Append(',');
            sb.Append('"').Append(Encoding.UTF8.GetString(Keys[i])).Append("\":").Append(child.MinText);
        }
        return sb.ToString();
    }

    private string MemberText(int i) => "\"" + Encoding.UTF8.GetString(Keys[i]) + "\":" + node.Properties[i].Node.MinText;

    public override string Close()
    {
        if (node.AnyObject)
            return stage switch
            {
                Stage.Open or Stage.AfterValue => "}",
                Stage.Colon => ":0}",
                Stage.Comma => "\"\":0}",
                _ => "}",
            };
        switch (stage)
        {
            case Stage.Open: return RequiredText(0, false) + "}";
            case Stage.Key:
            {
                string? best = null;
                foreach (int i in candidates)
                {
                    var k = Keys[i];
                    if (k.Length < keyPos) continue;
                    var s = Encoding.UTF8.GetString(k, keyPos, k.Length - keyPos) + "\":" + node.Properties[i].Node.MinText + RequiredText(i + 1, true) + "}";
                    if (best is null || s.Length < best.Length) best = s;
                }
                return best ?? "}";
            }
            case Stage.Colon: return ":" + node.Properties[chosen].Node.MinText + RequiredText(chosen + 1, true) + "}";
            case Stage.AfterValue: return RequiredText(next, true) + "}";
            case Stage.Comma:
            {
                string? best = null;
                foreach (int i in Allowed(next))
                {
                    var s = MemberText(i) + RequiredText(i + 1, true) + "}";
                    if (best is null || s.Length < best.Length) best = s;
                }
                return best ?? "}";
            }
            default: return "}";
        }
    }

    public override Frame ChildDone() => stage switch
    {
        Stage.AnyKey => new ObjectFrame(node, Stage.Colon, next, candidates),
        Stage.Value => new ObjectFrame(node, Stage.AfterValue, node.AnyObject ? 0 : chosen + 1, []),
        _ => throw new InvalidOperationException("an object frame got a value where it expects none"),
    };

    public override string CloseAfterChild() => stage == Stage.AnyKey ? ":0}" : ChildDone().Close();

    public override void Feed(JStack? rest, byte b, List<JStack> output)
    {
        switch (stage)
        {
            case Stage.Open:
            case Stage.Comma:
                if (b == '}' && stage == Stage.Open && !RequiredFrom(0)) { Done(rest, null, output); return; }
                if (b != '"') return;
                if (node.AnyObject) { Push(rest, new ObjectFrame(node, Stage.AnyKey, 0, []), new StringFrame(s_anyKey), null, output); return; }
                var allowed = Allowed(stage == Stage.Open ? 0 : next);
                if (allowed.Length > 0) output.Add(new JStack(new ObjectFrame(node, Stage.Key, next, allowed, 0), rest));
                return;
            case Stage.Key:
            {
                var keys = Keys;
                if (b == '"')
                {
                    foreach (int i in candidates)
                        if (keys[i].Length == keyPos) { output.Add(new JStack(new ObjectFrame(node, Stage.Colon, next, [], 0, i), rest)); return; }
                    return;
                }
                var still = candidates.Where(i => keys[i].Length > keyPos && keys[i][keyPos] == b).ToArray();
                if (still.Length > 0) output.Add(new JStack(new ObjectFrame(node, Stage.Key, next, still, keyPos + 1), rest));
                return;
            }
            case Stage.Colon:
                if (b != ':') return;
                Push(rest, new ObjectFrame(node, Stage.Value, next, [], 0, chosen), new ValueFrame(node.AnyObject ? SchemaNode.Any() : node.Properties[chosen].Node), null, output);
                return;
            case Stage.AfterValue:
                if (b == '}' && (node.AnyObject || !RequiredFrom(next))) { Done(rest, null, output); return; }
                if (b == ',' && (node.AnyObject || Allowed(next).Length > 0)) output.Add(new JStack(new ObjectFrame(node, Stage.Comma, next, []), rest));
                return;
        }
    }
}

internal sealed class ArrayFrame(SchemaNode node, ArrayFrame.Stage stage, int count) : Frame
{
    public enum Stage { Open, Value, AfterValue, Comma }

    private string Items(int n) => n <= 0 ? "" : string.Join(',', Enumerable.Repeat(node.Items!.MinText, n));

    public override string Close() => stage switch
    {
        Stage.Open => Items(node.MinItems) + "]",
        Stage.AfterValue => (count < node.MinItems ? "," + Items(node.MinItems - count) : "") + "]",
        Stage.Comma => Items(Math.Max(1, node.MinItems - count)) + "]",
        _ => "]",
    };

    public override Frame ChildDone() => new ArrayFrame(node, Stage.AfterValue, count + 1);

    public override void Feed(JStack? rest, byte b, List<JStack> output)
    {
        switch (stage)
        {
            case Stage.Open:
                if (b == ']') { if (node.MinItems == 0) Done(rest, null, output); return; }
                if (node.MaxItems > 0) Push(rest, new ArrayFrame(node, Stage.Value, count), new ValueFrame(node.Items!), b, output);
                return;
            case Stage.Comma:
                Push(rest, new ArrayFrame(node, Stage.Value, count), new ValueFrame(node.Items!), b, output);
                return;
            case Stage.AfterValue:
                if (b == ']' && count >= node.MinItems) Done(rest, null, output);
                else if (b == ',' && count < node.MaxItems) output.Add(new JStack(new ArrayFrame(node, Stage.Comma, count), rest));
                return;
        }
    }
}

/// <summary>
/// Literal text around a value (a tool call's frame: "&lt;tool_call&gt;\n" before the call's JSON, "\n&lt;/tool_call&gt;"
/// after): the prefix's bytes, then a value of <paramref name="node"/>, then the suffix's bytes, then the document ends.
/// With <paramref name="between"/>, the value may repeat: after one, either the suffix ends the document or
/// <paramref name="between"/> leads to another value (parallel calls: "\n&lt;/tool_call&gt;\n&lt;tool_call&gt;\n", or "," inside
/// Mistral's array); alternatives that share bytes stay alive together until a byte decides.
/// </summary>
internal sealed class FramedFrame(byte[] prefix, byte[] suffix, byte[]? between, SchemaNode node, FramedFrame.Stage stage, int pos) : Frame
{
    public enum Stage { Prefix, After, Suffix, Between }

    public override void Feed(JStack? rest, byte b, List<JStack> output)
    {
        switch (stage)
        {
            case Stage.Prefix:
                if (pos >= prefix.Length) { Push(rest, this, new ValueFrame(node), b, output); return; } // an empty prefix: the value starts here
                if (prefix[pos] != b) return;
                var next = new FramedFrame(prefix, suffix, between, node, Stage.Prefix, pos + 1);
                output.Add(pos + 1 == prefix.Length ? new JStack(new ValueFrame(node), new JStack(next, rest)) : new JStack(next, rest));
                return;
            case Stage.After:
                // right after a value: the suffix or, if values repeat, the text between two values
                Step(rest, b, output, Stage.Suffix, suffix, 0);
                if (between is not null) Step(rest, b, output, Stage.Between, between, 0);
                return;
            case Stage.Suffix:
                Step(rest, b, output, Stage.Suffix, suffix, pos);
                return;
            case Stage.Between:
                Step(rest, b, output, Stage.Between, between!, pos);
                return;
        }
    }

    private void Step(JStack? rest, byte b, List<JStack> output, Stage s, byte[] text, int at)
    {
        if (at >= text.Length || text[at] != b) return;
        var next = new FramedFrame(prefix, suffix, between, node, s, at + 1);
        if (at + 1 < text.Length) output.Add(new JStack(next, rest));
        else if (s == Stage.Suffix) Done(rest, null, output);                                  // the frame is closed: the document is
        else output.Add(new JStack(new ValueFrame(node), new JStack(next, rest)));               // another value follows
    }

    public override string Close() => Encoding.UTF8.GetString(CloseBytes());
    public override byte[] CloseBytes() => stage switch
    {
        Stage.Prefix => [.. prefix[Math.Min(pos, prefix.Length)..], .. Encoding.UTF8.GetBytes(node.MinText ?? ""), .. suffix],
        Stage.Between => [.. between![pos..], .. Encoding.UTF8.GetBytes(node.MinText ?? ""), .. suffix],
        Stage.After => suffix,
        _ => suffix[pos..],
    };
    public override Frame ChildDone() => new FramedFrame(prefix, suffix, between, node, Stage.After, 0);
    public override string CloseAfterChild() => Encoding.UTF8.GetString(suffix);

    /// <summary>The value and the whole suffix are written (only an empty suffix leaves the frame on the stack then).</summary>
    public bool Finished => (stage == Stage.After && suffix.Length == 0) || (stage == Stage.Suffix && pos == suffix.Length);

    /// <summary>The first stack: the frame expecting its prefix (or, with none, the value itself).</summary>
    public static JStack Start(byte[] prefix, byte[] suffix, byte[]? between, SchemaNode node, JStack bottom)
    {
        var frame = new FramedFrame(prefix, suffix, between, node, Stage.Prefix, 0);
        return prefix.Length == 0 ? new JStack(new ValueFrame(node), new JStack(frame, bottom)) : new JStack(frame, bottom);
    }
}
