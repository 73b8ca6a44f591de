// Microsoft.ML.Tokenizers 3.0 as a peer of `duet tokenizer bench`: the same text, line by line, one thread, the same
// cold/warm protocol (three uncounted fresh instances for the JIT, then the median of N fresh instances' first pass
// over the text = cold, the last instance again = warm), and how many lines give exactly Duet's ids.
//
// Routes, each where ML.Tokenizers can load the vocabulary:
//   tiktoken  byte-level tokenizer.json (llama3, qwen3): the vocabulary written as a .tiktoken rank file (rank = id),
//             the tokenizer.json split regex as a RegexPreTokenizer, NFC as a normalizer where the file has one
//   bpe       byte-level tokenizer.json: BpeTokenizer with ByteLevel = true, vocabulary and merges from the file
//   llama     a SentencePiece .model (LlamaTokenizer, ML.Tokenizers' SentencePiece BPE)
// Usage: Duet.Bench.Tokenizers TOKENIZER TEXT [--runs N] [--route tiktoken|bpe|llama]   (JSON lines on stdout)
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using MlTokenizer = Microsoft.ML.Tokenizers.Tokenizer;

if (args.Length < 2) { Console.Error.WriteLine("usage: Duet.Bench.Tokenizers TOKENIZER TEXT [--runs N] [--route tiktoken|bpe|llama]"); return 2; }
string path = args[0], textPath = args[1];
int runs = 5;
string? only = null;
for (int i = 2; i + 1 < args.Length; i += 2)
{
    if (args[i] == "--runs") runs = int.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture);
    else if (args[i] == "--route") only = args[i + 1];
}
var bytes = File.ReadAllBytes(textPath);
var lines = Encoding.UTF8.GetString(bytes).Split('\n');

// Duet's ids, the reference for "exact" (its own tests check them against sentencepiece and the HF pipeline).
var duet = Duet.Tokenizers.Tokenizer.Load(path);
var expected = lines.Select(l => duet.Encode(l)).ToArray();

var routes = new List<(string Name, Func<MlTokenizer> Make)>();
if (path.EndsWith(".model", StringComparison.Ordinal))
{
    var model = File.ReadAllBytes(path);
    routes.Add(("llama", () => LlamaTokenizer.Create(new MemoryStream(model), addBeginOfSentence: false, addEndOfSentence: false)));
}
else
{
    var hf = ByteLevelJson.Read(path);
    routes.Add(("tiktoken", () => TiktokenTokenizer.Create(new MemoryStream(hf.TiktokenFile), new RegexPreTokenizer(new Regex(hf.Pattern, RegexOptions.Compiled), hf.Special), hf.Nfc ? new NfcNormalizer() : null, hf.Special)));
    routes.Add(("bpe", () => BpeTokenizer.Create(new BpeOptions(hf.Vocab)
    {
        Merges = hf.Merges,
        ByteLevel = true,
        PreTokenizer = new RegexPreTokenizer(new Regex(hf.Pattern, RegexOptions.Compiled), hf.Special),
        Normalizer = hf.Nfc ? new NfcNormalizer() : null,
        SpecialTokens = hf.Special,
    })));
}

foreach (var (name, make) in routes)
{
    if (only is not null && only != name) continue;
    long tokens = 0;
    double Pass(MlTokenizer t)
    {
        var sw = Stopwatch.StartNew();
        tokens = 0;
        foreach (var line in lines) tokens += t.EncodeToIds(line).Count;
        return sw.Elapsed.TotalSeconds;
    }
    MlTokenizer tok = make();
    Pass(tok);
    for (int i = 0; i < 2; i++) { tok = make(); Pass(tok); }
    var cold = new double[runs];
    for (int i = 0; i < runs; i++)
    {
        tok = make();
        GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
        cold[i] = Pass(tok);
    }
    var warm = Enumerable.Range(0, runs).Select(_ => Pass(tok)).Order().ToArray();
    Array.Sort(cold);
    int exact = 0;
    for (int i = 0; i < lines.Length; i++)
        if (tok.EncodeToIds(lines[i]).SequenceEqual(expected[i])) exact++;
    double Mbps(double s) => bytes.Length / 1e6 / s;
    Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["tool"] = "ml-tokenizers-3.0.0",
        ["route"] = name,
        ["tokenizer"] = path,
        ["bytes"] = bytes.Length,
        ["tokens"] = tokens,
        ["mb_per_s"] = Math.Round(Mbps(warm[runs / 2]), 3),
        ["cold_mb_per_s"] = Math.Round(Mbps(cold[runs / 2]), 3),
        ["warm_mb_per_s"] = Math.Round(Mbps(warm[runs / 2]), 3),
        ["exact_lines"] = exact,
        ["lines"] = lines.Length,
    }));
}
return 0;

/// <summary>NFC, as the qwen3 tokenizer.json's normalizer.</summary>
internal sealed class NfcNormalizer : Normalizer
{
    public override string Normalize(string original) => original.Normalize(NormalizationForm.FormC);
    public override string Normalize(ReadOnlySpan<char> original) => original.ToString().Normalize(NormalizationForm.FormC);
}

/// <summary>What the peer needs from a byte-level tokenizer.json: vocabulary, merges, split regex, added tokens.</summary>
internal sealed record ByteLevelJson(Dictionary<string, int> Vocab, List<string> Merges, string Pattern, Dictionary<string, int> Special, bool Nfc, byte[] TiktokenFile)
{
    public static ByteLevelJson Read(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = doc.RootElement;
        var model = root.GetProperty("model");
        var vocab = model.GetProperty("vocab").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32());
        var merges = model.GetProperty("merges").EnumerateArray()
            .Select(m => m.ValueKind == JsonValueKind.Array ? m[0].GetString() + " " + m[1].GetString() : m.GetString()!).ToList();
        string? pattern = null;
        void Find(JsonElement e)
        {
            if (e.ValueKind == JsonValueKind.Object)
            {
                if (e.TryGetProperty("type", out var t) && t.GetString() == "Split" && e.GetProperty("pattern").TryGetProperty("Regex", out var rx))
                    pattern ??= rx.GetString();
                foreach (var p in e.EnumerateObject()) Find(p.Value);
            }
            else if (e.ValueKind == JsonValueKind.Array) foreach (var x in e.EnumerateArray()) Find(x);
        }
        Find(root.GetProperty("pre_tokenizer"));
        if (pattern is null) throw new InvalidDataException($"{path}: no Split regex in pre_tokenizer");
        var special = root.GetProperty("added_tokens").EnumerateArray().ToDictionary(a => a.GetProperty("content").GetString()!, a => a.GetProperty("id").GetInt32());
        bool nfc = root.TryGetProperty("normalizer", out var n) && n.ValueKind == JsonValueKind.Object && n.GetRawText().Contains("\"NFC\"", StringComparison.Ordinal);
        // GPT-2's byte alphabet: printable bytes stand for themselves, the others for U+0100 onwards.
        var charToByte = new Dictionary<char, byte>();
        int extra = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            charToByte[printable ? (char)b : (char)(256 + extra++)] = (byte)b;
        }
        var sb = new StringBuilder();
        foreach (var (token, id) in vocab.OrderBy(kv => kv.Value))
        {
            var raw = new byte[token.Length];
            bool ok = true;
            for (int i = 0; i < token.Length && ok; i++) ok = charToByte.TryGetValue(token[i], out raw[i]);
            if (ok) sb.Append(Convert.ToBase64String(raw)).Append(' ').Append(id).Append('\n');
        }
        return new ByteLevelJson(vocab, merges, pattern, special, nfc, Encoding.ASCII.GetBytes(sb.ToString()));
    }
}
