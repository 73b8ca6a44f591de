// A JSON schema compiled into the nodes the output automaton walks. The subset is what OpenAI structured
// outputs accept, which is what clients send: type (one or a list), properties, required,
// additionalProperties, items, minItems/maxItems, enum, const, anyOf/oneOf, $ref into #/$defs or
// #/definitions (recursion allowed), string minLength/maxLength, nullable unions. Anything else that would
// change which documents are valid (pattern, format with meaning, numeric bounds, ...) is refused with a
// SchemaException naming its JSON pointer, rather than silently ignored.
using System.Text;
using System.Text.Json;

namespace Duet.Inference.Constrained;

public sealed class SchemaException(string message) : Exception(message);

internal enum NodeKind { Any, Object, Array, String, Number, Integer, Boolean, Null, Literals, AnyOf }

internal sealed class SchemaNode
{
    public NodeKind Kind;
    public List<(string Name, SchemaNode Node, bool Required)> Properties = [];
    public bool AnyObject;                 // json_object / {"type":"object"} without properties: any members
    public SchemaNode? Items;
    public int MinItems, MaxItems = int.MaxValue;
    public int MinLength, MaxLength = int.MaxValue;
    public List<string> Literals = [];     // compact JSON texts of enum / const values
    public List<SchemaNode> Options = [];  // anyOf
    public string? MinText;                // the shortest valid text, filled by Finish()
    public byte[][]? KeyBytes;             // property names as generated, filled on first use

    public static SchemaNode Any() => new() { Kind = NodeKind.Any };
}

internal static class SchemaCompiler
{
    private static readonly HashSet<string> s_ignored = new(StringComparer.Ordinal)
    {
        "title", "description", "$schema", "$id", "$comment", "examples", "default", "strict", "name", "$defs", "definitions", "readOnly", "writeOnly", "deprecated",
    };

    public static SchemaNode Compile(JsonElement? schema)
    {
        if (schema is null) return new SchemaNode { Kind = NodeKind.Object, AnyObject = true }; // json_object: any object
        var root = schema.Value;
        var refs = new Dictionary<string, SchemaNode>(StringComparer.Ordinal);
        var node = Compile(root, root, "#", refs, 0);
        Finish(node);
        if (node.MinText is null) throw new SchemaException("the schema has no finite instance (every path recurses)");
        return node;
    }

    private static SchemaNode Compile(JsonElement s, JsonElement root, string at, Dictionary<string, SchemaNode> refs, int depth)
    {
        if (depth > 64) throw new SchemaException($"{at}: the schema nests deeper than 64 levels");
        if (s.ValueKind == JsonValueKind.True) return SchemaNode.Any();
        if (s.ValueKind == JsonValueKind.False) throw new SchemaException($"{at}: 'false' allows no value");
        if (s.ValueKind != JsonValueKind.Object) throw new SchemaException($"{at}: a schema must be an object or a boolean");
        if (s.TryGetProperty("$ref", out var r))
        {
            string path = r.GetString() ?? throw new SchemaException($"{at}/$ref: must be a string");
            if (refs.TryGetValue(path, out var known)) return known;
            var target = Resolve(root, path, at);
            var placeholder = new SchemaNode();
            refs[path] = placeholder;
            var compiled = Compile(target, root, path, refs, depth + 1);
            Copy(compiled, placeholder);
            return placeholder;
        }
        foreach (var p in s.EnumerateObject())
            if (!s_ignored.Contains(p.Name) && p.Name is not ("type" or "properties" or "required" or "additionalProperties" or "items" or "minItems" or "maxItems"
                    or "enum" or "const" or "anyOf" or "oneOf" or "minLength" or "maxLength" or "nullable" or "format"))
                throw new SchemaException($"{at}/{p.Name}: not supported by Duet's constrained decoding");
        if (s.TryGetProperty("format", out var fmt) && fmt.GetString() is not (null or "" or "text"))
            throw new SchemaException($"{at}/format: '{fmt.GetString()}' is not supported");
        if (s.TryGetProperty("const", out var c)) return new SchemaNode { Kind = NodeKind.Literals, Literals = [Compact(c)] };
        if (s.TryGetProperty("enum", out var e))
        {
            if (e.ValueKind != JsonValueKind.Array || e.GetArrayLength() == 0) throw new SchemaException($"{at}/enum: must be a non-empty array");
            return new SchemaNode { Kind = NodeKind.Literals, Literals = e.EnumerateArray().Select(Compact).Distinct().ToList() };
        }
        foreach (var key in new[] { "anyOf", "oneOf" })
            if (s.TryGetProperty(key, out var any))
            {
                if (any.ValueKind != JsonValueKind.Array || any.GetArrayLength() == 0) throw new SchemaException($"{at}/{key}: must be a non-empty array");
                // oneOf is generated as anyOf: a document matching two alternatives is possible only when they overlap,
                // which a schema meant for structured output does not do in practice.
                return new SchemaNode { Kind = NodeKind.AnyOf, Options = any.EnumerateArray().Select((o, i) => Compile(o, root, $"{at}/{key}/{i}", refs, depth + 1)).ToList() };
            }
        List<string> types = [];
        if (s.TryGetProperty("type", out var t))
        {
            if (t.ValueKind == JsonValueKind.String) types.Add(t.GetString()!);
            else if (t.ValueKind == JsonValueKind.Array) types.AddRange(t.EnumerateArray().Select(x => x.GetString() ?? throw new SchemaException($"{at}/type: must hold strings")));
            else throw new SchemaException($"{at}/type: must be a string or an array of strings");
        }
        else if (s.TryGetProperty("properties", out _)) types.Add("object");
        else if (s.TryGetProperty("items", out _)) types.Add("array");
        else return SchemaNode.Any();
        if (s.TryGetProperty("nullable", out var n) && n.ValueKind == JsonValueKind.True && !types.Contains("null")) types.Add("null");
        if (types.Count == 0) throw new SchemaException($"{at}/type: empty");
        var nodes = types.Distinct().Select(ty => Typed(ty, s, root, at, refs, depth)).ToList();
        return nodes.Count == 1 ? nodes[0] : new SchemaNode { Kind = NodeKind.AnyOf, Options = nodes };
    }

    private static SchemaNode Typed(string type, JsonElement s, JsonElement root, string at, Dictionary<string, SchemaNode> refs, int depth)
    {
        switch (type)
        {
            case "object":
            {
                var node = new SchemaNode { Kind = NodeKind.Object };
                var required = new HashSet<string>(StringComparer.Ordinal);
                if (s.TryGetProperty("required", out var req))
                {
                    if (req.ValueKind != JsonValueKind.Array) throw new SchemaException($"{at}/required: must be an array");
                    foreach (var x in req.EnumerateArray()) required.Add(x.GetString() ?? throw new SchemaException($"{at}/required: must hold strings"));
                }
                if (s.TryGetProperty("properties", out var props))
                {
                    if (props.ValueKind != JsonValueKind.Object) throw new SchemaException($"{at}/properties: must be an object");
                    foreach (var p in props.EnumerateObject())
                        node.Properties.Add((p.Name, Compile(p.Value, root, $"{at}/properties/{p.Name}", refs, depth + 1), required.Contains(p.Name)));
                }
                foreach (var r in required)
                    if (!node.Properties.Any(p => p.Name == r)) throw new SchemaException($"{at}/required: '{r}' is not among the properties");
                // Members beyond the declared ones are never generated: a subset of what the schema allows, so still valid.
                node.AnyObject = node.Properties.Count == 0 && !(s.TryGetProperty("additionalProperties", out var ap) && ap.ValueKind == JsonValueKind.False);
                return node;
            }
            case "array":
            {
                var node = new SchemaNode { Kind = NodeKind.Array, Items = s.TryGetProperty("items", out var items) ? Compile(items, root, $"{at}/items", refs, depth + 1) : SchemaNode.Any() };
                node.MinItems = Int(s, "minItems", at) ?? 0;
                node.MaxItems = Int(s, "maxItems", at) ?? int.MaxValue;
                if (node.MaxItems < node.MinItems) throw new SchemaException($"{at}: maxItems < minItems");
                return node;
            }
            case "string":
            {
                var node = new SchemaNode { Kind = NodeKind.String, MinLength = Int(s, "minLength", at) ?? 0, MaxLength = Int(s, "maxLength", at) ?? int.MaxValue };
                if (node.MaxLength < node.MinLength) throw new SchemaException($"{at}: maxLength < minLength");
                return node;
            }
            case "number": return new SchemaNode { Kind = NodeKind.Number };
            case "integer": return new SchemaNode { Kind = NodeKind.Integer };
            case "boolean": return new SchemaNode { Kind = NodeKind.Boolean };
            case "null": return new SchemaNode { Kind = NodeKind.Null };
            default: throw new SchemaException($"{at}/type: '{type}' is not a JSON schema type");
        }
    }

    private static int? Int(JsonElement s, string name, string at)
    {
        if (!s.TryGetProperty(name, out var v)) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int n) || n < 0) throw new SchemaException($"{at}/{name}: must be a non-negative integer");
        return n;
    }

    private static JsonElement Resolve(JsonElement root, string path, string at)
    {
        if (!path.StartsWith("#/", StringComparison.Ordinal) && path != "#") throw new SchemaException($"{at}/$ref: only local references (#/...) are supported, not '{path}'");
        var cur = root;
        foreach (var raw in path.Length > 1 ? path[2..].Split('/') : [])
        {
            var part = raw.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);
            if (cur.ValueKind != JsonValueKind.Object || !cur.TryGetProperty(part, out cur)) throw new SchemaException($"{at}/$ref: '{path}' does not resolve");
        }
        return cur;
    }

    private static void Copy(SchemaNode from, SchemaNode to)
    {
        to.Kind = from.Kind; to.Properties = from.Properties; to.AnyObject = from.AnyObject; to.Items = from.Items;
        to.MinItems = from.MinItems; to.MaxItems = from.MaxItems; to.MinLength = from.MinLength; to.MaxLength = from.MaxLength;
        to.Literals = from.Literals; to.Options = from.Options;
    }

    public static string Compact(JsonElement e)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            e.WriteTo(w);
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    // The shortest valid text of every node (recursion resolved by iterating to a fixed point).
    private static void Finish(SchemaNode root)
    {
        var all = new List<SchemaNode>();
        var seen = new HashSet<SchemaNode>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<SchemaNode>([root]);
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            if (!seen.Add(n)) continue;
            all.Add(n);
            foreach (var (_, child, _) in n.Properties) stack.Push(child);
            if (n.Items is not null) stack.Push(n.Items);
            foreach (var o in n.Options) stack.Push(o);
        }
        bool changed = true;
        while (changed)
        {
            changed = false;
            foreach (var n in all)
            {
                var text = MinText(n);
                if (text is not null && (n.MinText is null || text.Length < n.MinText.Length)) { n.MinText = text; changed = true; }
            }
        }
    }

    private static string? MinText(SchemaNode n)
    {
        switch (n.Kind)
        {
            case NodeKind.Any: return "0";
            case NodeKind.Number: case NodeKind.Integer: return "0";
            case NodeKind.Boolean: return "true";
            case NodeKind.Null: return "null";
            case NodeKind.String: return "\"" + new string('a', n.MinLength) + "\"";
            case NodeKind.Literals: return n.Literals.MinBy(l => l.Length);
            case NodeKind.AnyOf: return n.Options.Select(o => o.MinText).Where(t => t is not null).MinBy(t => t!.Length);
            case NodeKind.Array:
                if (n.MinItems == 0) return "[]";
                return n.Items!.MinText is { } it ? "[" + string.Join(',', Enumerable.Repeat(it, n.MinItems)) + "]" : null;
            case NodeKind.Object:
            {
                var sb = new StringBuilder("{");
                foreach (var (name, child, required) in n.Properties)
                {
                    if (!required) continue;
                    if (child.MinText is null) return null;
                    if (sb.Length > 1) sb.Append(',');
                    sb.Append(JsonSerializer.Serialize(name)).Append(':').Append(child.MinText);
                }
                return sb.Append('}').ToString();
            }
            default: return null;
        }
    }
}
