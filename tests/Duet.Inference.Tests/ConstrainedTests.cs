// Constrained decoding (response_format json_object / json_schema). Whatever the logits, the output must
// parse and validate: checked by sampling under hostile and random logits with real tokenizers, and by an
// independent validator (tests/reference/validate_json_schema.py, Python's jsonschema package).
using System.Text;
using System.Text.Json;
using Duet.Inference.Constrained;
using Duet.Tests;
using Duet.Tokenizers;
using Duet.Tokenizers.Trainer;

namespace Duet.Inference.Tests;

public class ConstrainedTests
{
    internal static readonly Lazy<Tokenizer> s_spm = new(() => Tokenizer.Load(Path.Combine(Repo.Root, "tests", "TestData", "spm-bpe.model")));
    internal static readonly Lazy<Tokenizer> s_bpe = new(() =>
    {
        var trainer = new BpeTrainer(new BpeTrainerOptions { VocabSize = 800 });
        foreach (var line in File.ReadLines(Path.Combine(Repo.Root, "tests", "TestData", "bilingual-test.txt")).Take(800)) trainer.AddText(line);
        trainer.AddText("{\"name\": \"Duet\", \"tags\": [\"free\", \"open\"], \"age\": 42, \"ok\": true, \"none\": null} 自由软件 -1.5e3");
        return trainer.Train();
    });

    private static JsonElement Schema(string json) => JsonDocument.Parse(json).RootElement.Clone();

    private static readonly string[] s_schemas =
    [
        """{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"tags":{"type":"array","items":{"type":"string","enum":["free","open","bilingual"]}}},"required":["name","age","tags"],"additionalProperties":false}""",
        """{"type":"object","properties":{"id":{"type":"integer"},"score":{"type":"number"},"ok":{"type":"boolean"},"note":{"type":["string","null"]},"child":{"$ref":"#/$defs/node"}},"required":["id","ok"],"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"next":{"anyOf":[{"$ref":"#/$defs/node"},{"type":"null"}]}},"required":["v","next"],"additionalProperties":false}}}""",
        """{"type":"array","items":{"type":"object","properties":{"k":{"const":"中文"},"n":{"type":"string","minLength":2,"maxLength":5}},"required":["k","n"]},"minItems":1,"maxItems":3}""",
        """{"anyOf":[{"type":"integer"},{"type":"object","properties":{"x":{"type":"number"}},"required":["x"]}]}""",
        """{"type":"object"}""",
    ];

    [Theory]
    [InlineData("""{"name":"Duet","age":3,"tags":["free","open"]}""", 0, true)]
    [InlineData("""{"name":"Duet","age":3,"tags":[]}""", 0, true)]
    [InlineData("""{"name":"Duet","age":3.5,"tags":[]}""", 0, false)]      // integer
    [InlineData("""{"age":3,"name":"Duet","tags":[]}""", 0, false)]        // declared order
    [InlineData("""{"name":"Duet","age":3}""", 0, false)]                  // required
    [InlineData("""{"name":"Duet","age":3,"tags":["closed"]}""", 0, false)] // enum
    [InlineData("""{"name": "Duet","age":3,"tags":[]}""", 0, false)]       // compact: no whitespace
    [InlineData("""{"name":"a\"b\\c\u00e9\n","age":-0,"tags":[]}""", 0, true)]
    [InlineData("""{"name":"\ud800","age":1,"tags":[]}""", 0, false)]     // lone surrogate escape
    [InlineData("""{"id":1,"ok":false,"child":{"v":1,"next":{"v":2,"next":null}}}""", 1, true)]
    [InlineData("""{"id":1,"score":-1.5e+3,"ok":true,"note":null}""", 1, true)]
    [InlineData("""{"id":1,"ok":true,"note":"x","extra":1}""", 1, true)] // additionalProperties allowed here, but never generated
    [InlineData("""[{"k":"中文","n":"ab"}]""", 2, true)]
    [InlineData("""[{"k":"中文","n":"a"}]""", 2, false)]                    // minLength
    [InlineData("""[{"k":"中文","n":"abcdef"}]""", 2, false)]               // maxLength
    [InlineData("""[]""", 2, false)]                                        // minItems
    [InlineData("""7""", 3, true)]
    [InlineData("""{"x":0.25}""", 3, true)]
    [InlineData("""{"any":[1,{"b":null},"s",true]}""", 4, true)]
    [InlineData("""[1]""", 4, false)]                                       // json_object: an object
    public void TryFeed_Documents_AcceptedExactlyWhenValid(string doc, int schema, bool valid)
    {
        var c = JsonConstraint.Create(s_bpe.Value, Schema(s_schemas[schema]), [2]);
        bool accepted = c.TryFeed(doc) && c.IsComplete;
        // What the automaton accepts must be valid; a valid document may still be outside what it generates
        // (other member order, whitespace, extra members), which the cases above mark as rejected.
        if (doc.Contains("extra", StringComparison.Ordinal)) Assert.False(accepted);
        else Assert.Equal(valid, accepted);
    }

    [Theory]
    [InlineData("""{"type":"string","pattern":"a+"}""")]
    [InlineData("""{"type":"integer","minimum":3}""")]
    [InlineData("""{"type":"object","properties":{"a":{"$ref":"http://x/y"}}}""")]
    [InlineData("""{"type":"object","properties":{"a":{"$ref":"#/$defs/missing"}}}""")]
    [InlineData("""{"type":"object","required":["a"]}""")]
    [InlineData("""{"type":"widget"}""")]
    [InlineData("""{"type":"object","properties":{"a":{"allOf":[{"type":"integer"}]}}}""")]
    public void Create_UnsupportedOrBrokenSchema_ThrowsNamingThePlace(string schema)
    {
        var e = Assert.Throws<SchemaException>(() => JsonConstraint.Create(s_bpe.Value, Schema(schema), [2]));
        Assert.False(string.IsNullOrWhiteSpace(e.Message));
    }

    internal enum Logits { Random, FavourClose, FavourStrings, FavourStop, FavourDigits }

    // Samples under the constraint with hostile logits: returns the text and whether it stopped by itself.
    internal static (string Text, bool Complete) Generate(Tokenizer tok, ITokenConstraint c, int seed, Logits mode, int maxTokens)
    {
        var rng = new Random(seed);
        var logits = new float[tok.VocabSize];
        var ids = new List<int>();
        string Text() => Encoding.UTF8.GetString(tok.DecodeToBytes(ids.ToArray())); // no leading space is ever allowed, so this is the bytes in order
        var stops = StopTokens.Of(tok);
        var favoured = new HashSet<int>();
        for (int id = 0; id < tok.VocabSize; id++)
        {
            var piece = tok.IdToToken(id);
            if (mode == Logits.FavourClose && (piece.Contains('}') || piece.Contains(']') || piece.Contains('"'))) favoured.Add(id);
            if (mode == Logits.FavourStrings && piece.Any(ch => ch > 0x2E80 || char.IsLetter(ch))) favoured.Add(id);
            if (mode == Logits.FavourDigits && piece.Any(char.IsDigit)) favoured.Add(id);
        }
        if (mode == Logits.FavourStop) favoured.UnionWith(stops);
        for (int step = 0; step < maxTokens; step++)
        {
            for (int i = 0; i < logits.Length; i++) logits[i] = (float)(rng.NextDouble() * 4 - 2) + (favoured.Contains(i) ? 8 : 0);
            c.Apply(logits, maxTokens - step);
            // Sample from softmax(logits) at temperature 1.
            double max = logits.Max(), sum = logits.Sum(v => Math.Exp(v - max)), u = rng.NextDouble() * sum, acc = 0;
            int token = Array.FindLastIndex(logits, v => !float.IsNegativeInfinity(v));
            for (int i = 0; i < logits.Length; i++)
            {
                acc += Math.Exp(logits[i] - max);
                if (u <= acc && !float.IsNegativeInfinity(logits[i])) { token = i; break; }
            }
            Assert.False(float.IsNegativeInfinity(logits[token]), "nothing was allowed");
            c.Accept(token);
            if (stops.Contains(token)) return (Text(), true);
            ids.Add(token);
            if (c.IsComplete) return (Text(), true);
        }
        return (Text(), c.IsComplete);
    }

    [Fact]
    public void Sampling_HostileLogits_AlwaysValidAgainstJsonschema()
    {
        var cases = new List<object>();
        var generated = new List<(int Schema, string Text)>();
        for (int si = 0; si < s_schemas.Length; si++)
        {
            var docs = new List<string>();
            foreach (var tok in new[] { s_spm.Value, s_bpe.Value })
                for (int seed = 0; seed < 12; seed++)
                {
                    var mode = (Logits)(seed % 5);
                    int budget = seed % 3 == 0 ? 24 : 160;   // short budgets force the early close
                    var c = JsonConstraint.Create(tok, Schema(s_schemas[si]), [.. StopTokens.Of(tok)]);
                    if (budget < c.MinimumLength) budget = c.MinimumLength;
                    var (text, complete) = Generate(tok, c, seed * 31 + si, mode, budget);
                    Assert.True(complete, $"schema {si} seed {seed} ({mode}, {budget} tokens) did not complete: {text}");
                    using var _ = JsonDocument.Parse(text);
                    docs.Add(text);
                    generated.Add((si, text));
                }
            cases.Add(new { schema = JsonDocument.Parse(s_schemas[si]).RootElement, documents = docs });
        }
        var file = Path.Combine(Path.GetTempPath(), $"duet-constrained-{Environment.ProcessId}.json");
        File.WriteAllText(file, JsonSerializer.Serialize(cases));
        try
        {
            var output = Repo.Run("/usr/bin/python3", Repo.Reference("validate_json_schema.py"), file);
            var results = JsonSerializer.Deserialize<string[][]>(output)!;
            int k = 0;
            for (int si = 0; si < results.Length; si++)
                foreach (var r in results[si])
                {
                    Assert.True(r == "valid", $"schema {si}: {generated[k].Text} -> {r}");
                    k++;
                }
            Assert.Equal(generated.Count, k);
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public void Apply_CompleteDocument_OnlyStopTokensRemain()
    {
        var tok = s_bpe.Value;
        var stops = StopTokens.Of(tok);
        var c = JsonConstraint.Create(tok, Schema("""{"type":"object","properties":{"a":{"type":"boolean"}},"required":["a"]}"""), [.. stops]);
        Assert.True(c.TryFeed("{\"a\":true}"));
        Assert.True(c.IsComplete);
        var logits = new float[tok.VocabSize];
        c.Apply(logits);
        for (int i = 0; i < logits.Length; i++) Assert.Equal(stops.Contains(i), !float.IsNegativeInfinity(logits[i]));
    }

    [Fact]
    public void Apply_ChineseInStrings_MultiByteCharactersStayWhole()
    {
        // The SentencePiece model spells rare Chinese characters with byte-fallback tokens: a character split
        // over three tokens must be allowed, and an invalid continuation must not.
        var tok = s_spm.Value;
        var c = JsonConstraint.Create(tok, Schema("""{"type":"object","properties":{"s":{"type":"string"}},"required":["s"]}"""), [.. StopTokens.Of(tok)]);
        Assert.True(c.TryFeed("{\"s\":\"自由"));
        Assert.True(c.TryFeed("\u9fa5"));  // 3 bytes
        var e4 = tok.TokenToId("<0xE4>")!.Value;
        var x41 = tok.TokenToId("<0x41>")!.Value;
        var logits = new float[tok.VocabSize];
        c.Apply(logits);
        Assert.False(float.IsNegativeInfinity(logits[e4]));
        c.Accept(e4);
        Array.Clear(logits);
        c.Apply(logits);
        Assert.True(float.IsNegativeInfinity(logits[x41]), "an ASCII byte cannot follow a UTF-8 lead byte");
    }
}
