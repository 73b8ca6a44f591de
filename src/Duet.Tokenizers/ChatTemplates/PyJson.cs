// The tojson filter as Hugging Face defines it for chat templates:
//     json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
// (transformers overrides jinja2's HTML-escaping tojson). Output is byte-identical to Python's json module:
// ", " and ": " separators (item separator "," when indented), floats as repr(), non-ASCII kept unless
// ensure_ascii, dict keys converted the way json.dumps converts them (1 -> "1", True -> "true", None -> "null").
using System.Globalization;
using System.Text;

namespace Duet.Tokenizers.ChatTemplates;

internal static class PyJson
{
    public static string Dumps(object? value, bool ensureAscii, object? indent, object? separators, bool sortKeys, int maxLength)
    {
        string? indentText = indent switch
        {
            null => null,
            string s => s,
            bool b => b ? " " : "",
            long n => n > 0 ? new string(' ', (int)Math.Min(n, 1024)) : "",
            _ => throw new TemplateRuntimeError("TypeError", $"can't multiply sequence by non-int of type '{PyValues.TypeName(indent)}'"),
        };
        string itemSep = indentText is null ? ", " : ",", keySep = ": ";
        if (separators is not null)
        {
            if (separators is not PyList { Count: 2 } sep || sep.Items[0] is not string a || sep.Items[1] is not string b)
                throw new TemplateRuntimeError("ValueError", "separators must be a (item_separator, key_separator) pair of strings");
            itemSep = a;
            keySep = b;
        }
        var w = new Writer(ensureAscii, indentText, itemSep, keySep, sortKeys, maxLength);
        w.Write(value, 0);
        return w.Sb.ToString();
    }

    private sealed class Writer(bool ensureAscii, string? indent, string itemSep, string keySep, bool sortKeys, int maxLength)
    {
        public readonly StringBuilder Sb = new();

        private void Check()
        {
            if (Sb.Length > maxLength) throw new TemplateRuntimeError("LimitError", $"tojson output exceeds the render limit of {maxLength} characters");
        }

        private void NewLine(int level)
        {
            if (indent is null) return;
            Sb.Append('\n');
            for (int i = 0; i < level; i++) Sb.Append(indent);
            Check();
        }

        public void Write(object? v, int level)
        {
            if (level > 200) throw new TemplateRuntimeError("RecursionError", "maximum recursion depth exceeded while encoding a JSON object");
            switch (v)
            {
                case null: Sb.Append("null"); break;
                case bool b: Sb.Append(b ? "true" : "false"); break;
                case long l: Sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
                case double d: Sb.Append(Float(d)); break;
                case string s: WriteString(s); break;
                case PyList { Kind: SeqKind.List or SeqKind.Tuple } list:
                    if (list.Count == 0) { Sb.Append("[]"); break; }
                    Sb.Append('[');
                    for (int i = 0; i < list.Count; i++)
                    {
                        if (i > 0) Sb.Append(itemSep);
                        NewLine(level + 1);
                        Write(list.Items[i], level + 1);
                    }
                    NewLine(level);
                    Sb.Append(']');
                    break;
                case PyDict dict:
                    {
                        if (dict.Count == 0) { Sb.Append("{}"); break; }
                        var items = dict.Items.ToList();
                        if (sortKeys) items = [.. items.OrderBy(kv => kv.Key, Comparer<object?>.Create(PyValues.SortCompare))];
                        Sb.Append('{');
                        bool first = true;
                        foreach (var (k, val) in items)
                        {
                            if (!first) Sb.Append(itemSep);
                            first = false;
                            NewLine(level + 1);
                            WriteString(Key(k));
                            Sb.Append(keySep);
                            Write(val, level + 1);
                        }
                        NewLine(level);
                        Sb.Append('}');
                        break;
                    }
                default:
                    throw new TemplateRuntimeError("TypeError", $"Object of type {PyValues.TypeName(v)} is not JSON serializable");
            }
            Check();
        }

        private static string Key(object? k) => k switch
        {
            string s => s,
            null => "null",
            bool b => b ? "true" : "false",
            long l => l.ToString(CultureInfo.InvariantCulture),
            double d => Float(d),
            _ => throw new TemplateRuntimeError("TypeError", $"keys must be str, int, float, bool or None, not {PyValues.TypeName(k)}"),
        };

        private static string Float(double d) =>
            double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : PyText.FloatRepr(d);

        private void WriteString(string s)
        {
            Sb.Append('"');
            foreach (char c in s)
            {
                switch (c)
                {
                    case '"': Sb.Append("\\\""); break;
                    case '\\': Sb.Append("\\\\"); break;
                    case '\n': Sb.Append("\\n"); break;
                    case '\r': Sb.Append("\\r"); break;
                    case '\t': Sb.Append("\\t"); break;
                    case '\b': Sb.Append("\\b"); break;
                    case '\f': Sb.Append("\\f"); break;
                    default:
                        if (c < ' ' || (ensureAscii && c > '~')) Sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                        else Sb.Append(c);
                        break;
                }
            }
            Sb.Append('"');
        }
    }
}
