// Constrained decoding for response_format json_object / json_schema: before each token, every token whose
// bytes cannot continue a valid document is masked out; the tokens' byte strings sit in a trie, so a prefix
// shared by many tokens is checked once. When the remaining token budget gets as short as the shortest
// completion of the document, only tokens on that completion stay allowed, so the output ends valid even
// when max_tokens cuts it short (every tokenizer Duet loads can spell any byte with one token); once the
// document is complete, only end-of-turn tokens stay (the engine also stops there by itself).
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Duet.Tokenizers;
using Duet.Tokenizers.Models;

namespace Duet.Inference.Constrained;

/// <summary>A trie over byte strings, in CSR form: children of node n are ChildNode[First[n] .. First[n + 1]).</summary>
internal sealed class Trie
{
    public readonly int[] First;
    public readonly byte[] ChildByte;
    public readonly int[] ChildNode;
    public readonly int[] TokensFirst;          // tokens ending at node n: Tokens[TokensFirst[n] .. TokensFirst[n + 1])
    public readonly int[] Tokens;

    public Trie(byte[]?[] bytes, Func<int, bool> include)
    {
        var children = new List<Dictionary<byte, int>> { new() };
        var ends = new List<List<int>?> { null };
        for (int id = 0; id < bytes.Length; id++)
        {
            if (bytes[id] is not { } b || !include(id)) continue;
            int node = 0;
            foreach (byte x in b)
            {
                if (!children[node].TryGetValue(x, out int c))
                {
                    c = children.Count;
                    children.Add([]);
                    ends.Add(null);
                    children[node][x] = c;
                }
                node = c;
            }
            (ends[node] ??= []).Add(id);
        }
        int n = children.Count;
        First = new int[n + 1];
        TokensFirst = new int[n + 1];
        var cb = new List<byte>();
        var cn = new List<int>();
        var toks = new List<int>();
        for (int i = 0; i < n; i++)
        {
            First[i] = cb.Count;
            foreach (var (x, c) in children[i].OrderBy(kv => kv.Key)) { cb.Add(x); cn.Add(c); }
            TokensFirst[i] = toks.Count;
            if (ends[i] is { } e) toks.AddRange(e);
        }
        First[n] = cb.Count;
        TokensFirst[n] = toks.Count;
        ChildByte = cb.ToArray();
        ChildNode = cn.ToArray();
        Tokens = toks.ToArray();
    }

    public int Child(int node, byte b)
    {
        for (int i = First[node]; i < First[node + 1]; i++) if (ChildByte[i] == b) return ChildNode[i];
        return -1;
    }
}

/// <summary>Each token's bytes as they appear inside generated text, and tries over them; built once per tokenizer.</summary>
internal sealed class TokenTrie
{
    private static readonly ConditionalWeakTable<Tokenizer, TokenTrie> s_cache = new();

    public readonly byte[]?[] Bytes;            // null: never allowed inside JSON (special tokens, empty)
    public readonly Trie All;
    // Tokens that are plain string content (no quote, backslash or control byte; whole UTF-8 characters): inside a
    // string they leave the automaton where it was, so they are allowed there without a walk. Most of a vocabulary.
    public readonly int[] PlainTokens;
    public readonly int[] PlainChars;           // characters of each plain token (0 if not plain)
    public readonly int MaxPlainChars;
    public readonly Trie NotPlain;

    public static TokenTrie For(Tokenizer tokenizer) => s_cache.GetValue(tokenizer, t => new TokenTrie(t));

    private TokenTrie(Tokenizer tok)
    {
        int v = tok.VocabSize;
        Bytes = new byte[]?[v];
        // A token's bytes in the middle of text: decode it after an anchor and drop the anchor's bytes, so a
        // SentencePiece '▁' becomes the space it is mid-text (alone, a leading one would be stripped).
        int? anchor = tok.TokenToId("a") ?? tok.TokenToId("<0x61>");
        byte[] anchorBytes = anchor is int a ? tok.DecodeToBytes([a]) : [];
        for (int id = 0; id < v; id++)
        {
            if (tok.AddedTokens.IsAdded(id)) continue;
            var type = tok.GetTokenType(id);
            if (type is TokenType.Control or TokenType.Unknown) continue;
            byte[] b;
            if (anchor is int an)
            {
                var both = tok.DecodeToBytes([an, id]);
                if (both.Length <= anchorBytes.Length || !both.AsSpan(0, anchorBytes.Length).SequenceEqual(anchorBytes)) continue;
                b = both[anchorBytes.Length..];
            }
            else b = tok.DecodeToBytes([id]);
            if (b.Length > 0) Bytes[id] = b;
        }
        PlainChars = new int[v];
        var plain = new List<int>();
        for (int id = 0; id < v; id++)
            if (Bytes[id] is { } b && PlainContent(b) is int chars)
            {
                plain.Add(id);
                PlainChars[id] = chars;
                MaxPlainChars = Math.Max(MaxPlainChars, chars);
            }
        PlainTokens = plain.ToArray();
        All = new Trie(Bytes, _ => true);
        NotPlain = new Trie(Bytes, id => PlainChars[id] == 0);
    }

    // The number of characters if the bytes are plain string content, else null.
    private static int? PlainContent(byte[] b)
    {
        foreach (byte x in b) if (x < 0x20 || x == '"' || x == '\\') return null;
        if (System.Text.Unicode.Utf8.IsValid(b) is false) return null;
        // Surrogates, overlong forms and > U+10FFFF are not valid UTF-8, so the automaton accepts exactly these.
        return Encoding.UTF8.GetCharCount(b) - CountSupplementary(b);
    }

    private static int CountSupplementary(byte[] b)
    {
        int n = 0;
        foreach (byte x in b) if (x >= 0xF0) n++;
        return n; // a 4-byte character is one character to JSON schema (a code point), two UTF-16 units
    }
}

public sealed class JsonConstraint : ITokenConstraint
{
    private readonly TokenTrie _table;
    private readonly SchemaNode _root;
    private readonly int[] _stops;
    private List<JStack> _state = [];
    private readonly bool[] _allowed;
    private readonly List<List<JStack>> _scratch = [];
    private readonly byte[]? _prefix, _suffix, _between; // literal text around the document (a tool call's frame), or none; between repeated values

    private JsonConstraint(TokenTrie trie, SchemaNode root, IReadOnlyCollection<int> stopTokens, int vocab, string? prefix = null, string? suffix = null, string? between = null)
    {
        _table = trie;
        _root = root;
        if (prefix is not null || suffix is not null) { _prefix = Encoding.UTF8.GetBytes(prefix ?? ""); _suffix = Encoding.UTF8.GetBytes(suffix ?? ""); }
        if (between is not null) _between = Encoding.UTF8.GetBytes(between);
        _stops = stopTokens.ToArray();
        _allowed = new bool[vocab];
        Reset();
    }

    /// <summary>
    /// A constraint for <paramref name="tokenizer"/>: any JSON object when <paramref name="schema"/> is null (json_object),
    /// else documents valid against the schema. Throws SchemaException for schemas outside the supported subset.
    /// </summary>
    public static JsonConstraint Create(Tokenizer tokenizer, JsonElement? schema, IReadOnlyCollection<int> stopTokens, int vocab = 0)
    {
        var root = SchemaCompiler.Compile(schema);
        return new JsonConstraint(TokenTrie.For(tokenizer), root, stopTokens, Math.Max(vocab, tokenizer.VocabSize));
    }

    /// <summary>
    /// As <see cref="Create"/>, with the document between literal texts: <paramref name="prefix"/>, then the JSON value,
    /// then <paramref name="suffix"/> (a tool call in a model's format: "&lt;tool_call&gt;\n" {...} "\n&lt;/tool_call&gt;").
    /// </summary>
    /// <param name="between">when given, the value may repeat: after one, this text leads to another (the document
    /// is complete after each suffix, and may go on)</param>
    public static JsonConstraint CreateFramed(Tokenizer tokenizer, JsonElement schema, string prefix, string suffix, IReadOnlyCollection<int> stopTokens, int vocab = 0, string? between = null)
    {
        var root = SchemaCompiler.Compile(schema);
        return new JsonConstraint(TokenTrie.For(tokenizer), root, stopTokens, Math.Max(vocab, tokenizer.VocabSize), prefix, suffix, between);
    }

    /// <summary>Bytes in the shortest valid document: a reply needs at least this many tokens (fewer if tokens are longer).</summary>
    public int MinimumLength => Encoding.UTF8.GetByteCount(_root.MinText!) + (_prefix?.Length ?? 0) + (_suffix?.Length ?? 0);

    public void Reset()
    {
        var bottom = new JStack(new RootFrame(false), null);
        _state = [_prefix is null ? new JStack(new ValueFrame(_root), bottom) : FramedFrame.Start(_prefix, _suffix!, _between, _root, bottom)];
    }

    public bool IsComplete => _state.Any(Completed);

    public bool ContinuesAfterComplete => _between is not null;

    private static bool Completed(JStack s) => s.Top is RootFrame { IsDone: true }
        || (s.Rest is { Top: RootFrame } && (s.Top is NumberFrame { Terminal: true } || s.Top is LiteralFrame { Complete: true } || s.Top is FramedFrame { Finished: true }));

    private int _closeBudget = int.MaxValue;

    /// <summary>The shortest completion over the alternatives alive.</summary>
    private static byte[] ShortestClose(List<JStack> state)
    {
        byte[]? best = null;
        foreach (var s in state)
        {
            if (Completed(s)) return [];
            var c = s.Close();
            if (best is null || c.Length < best.Length) best = c;
        }
        return best ?? [];
    }

    public void Apply(Span<float> logits) => Apply(logits, int.MaxValue);

    public void Apply(Span<float> logits, int remainingTokens)
    {
        Array.Clear(_allowed);
        if (IsComplete)
        {
            foreach (int t in _stops) if ((uint)t < (uint)_allowed.Length) _allowed[t] = true;
            // Repeated values (parallel tool calls): complete after each, and free to go on to another while the
            // budget holds one more (ShortestClose of the alternatives that go on).
            if (_between is not null && _state.Where(s => !Completed(s)).ToList() is { Count: > 0 } open
                && remainingTokens > ShortestClose(open).Length + 1)
            {
                _closeBudget = remainingTokens - 1;
                Visit(_table.All, 0, open, 0);
            }
        }
        else
        {
            var close = ShortestClose(_state);
            if (remainingTokens <= close.Length) AllowPrefixesOf(close);
            else
            {
                // Near the end of the budget, a token must also leave a completion that still fits: one token can
                // lengthen the shortest completion (a UTF-8 lead byte owes continuation bytes, "[[" owes "]]").
                _closeBudget = remainingTokens - 1 < close.Length + 64 ? remainingTokens - 1 : int.MaxValue;
                if (_state is [{ Top: StringFrame { Plain: true } str }] && str.RoomFor(_table.MaxPlainChars) && close.Length <= _closeBudget)
                {
                    // Inside a string: plain tokens keep the state as it is (and its completion), so they are allowed
                    // without a walk; only the others (quotes, escapes, partial characters) are walked.
                    foreach (int t in _table.PlainTokens) _allowed[t] = true;
                    Visit(_table.NotPlain, 0, _state, 0);
                }
                else Visit(_table.All, 0, _state, 0);
            }
        }
        bool any = false;
        for (int t = 0; t < logits.Length; t++)
        {
            if (t >= _allowed.Length || !_allowed[t]) logits[t] = float.NegativeInfinity;
            else if (!float.IsNegativeInfinity(logits[t])) any = true;
        }
        // A logit_bias that banned every allowed token would leave nothing to sample: the constraint wins.
        if (!any)
            for (int t = 0; t < logits.Length && t < _allowed.Length; t++) if (_allowed[t]) logits[t] = 0;
    }

    // Tokens whose bytes are a non-empty prefix of the shortest completion.
    private void AllowPrefixesOf(byte[] close)
    {
        var trie = _table.All;
        int node = 0;
        foreach (byte b in close)
        {
            node = trie.Child(node, b);
            if (node < 0) break;
            for (int i = trie.TokensFirst[node]; i < trie.TokensFirst[node + 1]; i++) _allowed[trie.Tokens[i]] = true;
        }
    }

    private void Visit(Trie trie, int node, List<JStack> state, int depth)
    {
        for (int i = trie.First[node]; i < trie.First[node + 1]; i++)
        {
            var next = Step(state, trie.ChildByte[i], depth);
            if (next.Count == 0) continue;
            int child = trie.ChildNode[i];
            if (trie.TokensFirst[child] < trie.TokensFirst[child + 1] && (_closeBudget == int.MaxValue || ShortestClose(next).Length <= _closeBudget))
                for (int k = trie.TokensFirst[child]; k < trie.TokensFirst[child + 1]; k++) _allowed[trie.Tokens[k]] = true;
            if (trie.First[child] < trie.First[child + 1]) Visit(trie, child, next, depth + 1);
        }
    }

    // The stacks after byte b, in a list reused per trie depth (no allocation for the lists themselves).
    private List<JStack> Step(List<JStack> state, byte b, int depth)
    {
        while (_scratch.Count <= depth) _scratch.Add([]);
        var output = _scratch[depth];
        output.Clear();
        foreach (var s in state) s.Top.Feed(s.Rest, b, output);
        return output;
    }

    public void Accept(int token)
    {
        if (_stops.Contains(token))
        {
            if (!IsComplete) throw new InvalidOperationException($"token {token} ends the reply before the JSON document is complete");
            return;
        }
        var bytes = (uint)token < (uint)_table.Bytes.Length ? _table.Bytes[token] : null;
        if (bytes is null) throw new InvalidOperationException($"token {token} cannot appear in JSON output");
        var state = _state;
        foreach (byte b in bytes)
        {
            var next = new List<JStack>();
            foreach (var s in state) s.Top.Feed(s.Rest, b, next);
            if (next.Count == 0)
                throw new InvalidOperationException($"token {token} ({Encoding.UTF8.GetString(bytes)}) does not continue a valid JSON document (at byte 0x{b:X2}; {string.Join(" | ", state.Select(x => x.Top.GetType().Name + ":" + Encoding.UTF8.GetString(x.Close())))})");
            state = next;
        }
        _state = state;
    }

    /// <summary>Feeds raw text (tests, and checking a document against the schema).</summary>
    public bool TryFeed(string text)
    {
        var state = _state;
        foreach (byte b in Encoding.UTF8.GetBytes(text))
        {
            var next = new List<JStack>();
            foreach (var s in state) s.Top.Feed(s.Rest, b, next);
            if (next.Count == 0) return false;
            state = next;
        }
        _state = state;
        return true;
    }
}
