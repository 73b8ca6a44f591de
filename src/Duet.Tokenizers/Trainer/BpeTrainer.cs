// Trains a bilingual (English + Chinese) byte-fallback BPE in the SentencePiece style of Llama 2 and Yi.
//
// The tokenizer it makes:
//   ids 0..: special tokens (<unk>, <s>, </s>, then --special-tokens such as <|im_start|>), the 256 byte
//   tokens <0x00>..<0xFF>, the characters that cover `CharacterCoverage` of the text (rarer characters,
//   such as rare CJK, fall back to their UTF-8 bytes), then one token per merge.
//   Text: ' ' -> '▁' with a '▁' dummy prefix (Prepend + Replace, as Llama 2's tokenizer.json), no pre-tokenizer.
//
// Merges never join across a class boundary: digits never merge (numbers are split digit by digit);
// no token spans a space: a token is a run of '▁' (indentation), or one '▁' followed by letters, CJK
// or punctuation; letters, CJK, punctuation and other whitespace (\n, \t) each merge only with their
// own class. Because no merge crosses those boundaries,
// plain BPE over the whole text (what every HF implementation runs) segments exactly as training did,
// and the tokenizer needs no split regex, whose semantics differ between regex engines.
//
// Algorithm (as HF tokenizers' BpeTrainer and sentencepiece's bpe_model_trainer): count pre-tokens
// ("words") in one streaming pass, with a bounded table; then repeatedly merge the most frequent pair,
// taken from a priority queue with lazy re-validation, updating pair counts incrementally in only the
// words that contain the pair (a where-index per pair), never rescanning the corpus.
using System.Globalization;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;
using Duet.Tokenizers.Decoders;
using Duet.Tokenizers.Models;
using Duet.Tokenizers.Normalizers;
using Duet.Tokenizers.PostProcessors;

namespace Duet.Tokenizers.Trainer;

public sealed record BpeTrainerOptions
{
    public int VocabSize { get; init; } = 16000;
    /// <summary>Share of character occurrences the base alphabet covers (SentencePiece's character_coverage).</summary>
    public double CharacterCoverage { get; init; } = 0.9995;
    public int MinPairFrequency { get; init; } = 2;
    /// <summary>Longest token, in characters (SentencePiece's max_sentencepiece_length).</summary>
    public int MaxTokenLength { get; init; } = 16;
    /// <summary>Pre-tokens are cut to this many characters; longer runs (long CJK clauses) are chunked.</summary>
    public int MaxWordLength { get; init; } = 64;
    /// <summary>Bound on distinct pre-tokens held while counting; rare ones are pruned beyond it.</summary>
    public int MaxDistinctWords { get; init; } = 4_000_000;
    public IReadOnlyList<string> ExtraSpecialTokens { get; init; } = ["<|im_start|>", "<|im_end|>"];
}

public readonly record struct TrainerProgress(string Stage, double Fraction, string Detail);

public sealed class BpeTrainer(BpeTrainerOptions options)
{
    public const char Space = '\u2581';
    private readonly BpeTrainerOptions _o = options;
    private readonly Dictionary<string, long> _words = new(StringComparer.Ordinal);
    private long _pruneBelow = 1;
    public long CharactersSeen { get; private set; }
    public int DistinctWords => _words.Count;

    // ---- Pass 1: pre-tokens -------------------------------------------------------------------

    private enum Cls : byte { Space, Word, Cjk, Digit, Punct, OtherSpace }

    private static Cls Classify(int cp)
    {
        if (cp == Space) return Cls.Space;
        if (Text.CharClass.IsNumber(cp)) return Cls.Digit;
        if (Text.CharClass.IsWhiteSpace(cp)) return Cls.OtherSpace;
        if (IsCjk(cp)) return Cls.Cjk;
        var cat = CharUnicodeInfo.GetUnicodeCategory(cp);
        return Text.CharClass.IsLetter(cp) || cat is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
            ? Cls.Word : Cls.Punct;
    }

    private static bool IsCjk(int cp) =>
        (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x3134F) || (cp >= 0xF900 && cp <= 0xFAFF)
        || (cp >= 0x3040 && cp <= 0x30FF) || (cp >= 0xAC00 && cp <= 0xD7AF) || (cp >= 0x1100 && cp <= 0x11FF) || (cp >= 0x3130 && cp <= 0x318F);

    /// <summary>Whether a pre-token boundary lies between two adjacent characters (see the file comment).</summary>
    private static bool Boundary(Cls x, Cls y) =>
        x == Cls.Digit || y == Cls.Digit
        || (x == Cls.Space ? y is not (Cls.Space or Cls.Word or Cls.Cjk or Cls.Punct) : x != y);

    // Token shape, for the merge rule: a run of '▁' only, or an optional '▁' and one class.
    private readonly record struct Shape(Cls Class, bool AllSpace, bool StartsWithSpace, int Length);

    private static bool CanMerge(Shape a, Shape b)
    {
        if (b.StartsWithSpace) return a.AllSpace && b.AllSpace;                  // indentation runs
        if (a.AllSpace) return a.Length == 1 && b.Class is Cls.Word or Cls.Cjk or Cls.Punct; // '▁' + word
        return a.Class == b.Class && a.Class != Cls.Digit;
    }

    private static Shape ShapeOf(string token)
    {
        int len = 0, lead = 0;
        Cls cls = Cls.Space;
        for (int i = 0; i < token.Length;)
        {
            int cp = Text.CharClass.CodePointAt(token, i, out int n);
            if (cp == Space && len == lead) lead++;
            else if (len == lead) cls = Classify(cp);
            len++;
            i += n;
        }
        return new Shape(cls, lead == len, lead > 0, len);
    }

    /// <summary>Counts the pre-tokens of one document (text as the tokenizer will see it: a dummy prefix is added).</summary>
    public void AddText(ReadOnlySpan<char> text)
    {
        if (text.IsEmpty) return;
        var lookup = _words.GetAlternateLookup<ReadOnlySpan<char>>();
        Span<char> buf = stackalloc char[_o.MaxWordLength * 2 + 2];
        int len = 0, chars = 0;
        Cls prev = Cls.Space;
        buf[len++] = Space; chars = 1;
        for (int i = 0; i < text.Length;)
        {
            int cp = Text.CharClass.CodePointAt(text, i, out int n);
            if (cp == ' ') cp = Space;
            var c = Classify(cp);
            if (len > 0 && (Boundary(prev, c) || chars >= _o.MaxWordLength))
            {
                Count(lookup, buf[..len]);
                len = 0; chars = 0;
            }
            if (cp == Space) buf[len++] = Space;
            else { text.Slice(i, n).CopyTo(buf[len..]); len += n; }
            chars++;
            prev = c;
            i += n;
        }
        if (len > 0) Count(lookup, buf[..len]);
        CharactersSeen += text.Length;
    }

    private void Count(Dictionary<string, long>.AlternateLookup<ReadOnlySpan<char>> lookup, ReadOnlySpan<char> word)
    {
        ref long slot = ref CollectionsMarshal.GetValueRefOrAddDefault(lookup, word, out _);
        slot++;
        if (_words.Count > _o.MaxDistinctWords) Prune();
    }

    // Bounded memory: drop the rarest pre-tokens, raising the bar until the table is at most 3/4 full.
    private void Prune()
    {
        while (_words.Count > _o.MaxDistinctWords * 3L / 4)
        {
            foreach (var k in _words.Where(kv => kv.Value <= _pruneBelow).Select(kv => kv.Key).ToList()) _words.Remove(k);
            _pruneBelow++;
        }
    }

    /// <summary>Streams files (plain or .gz), one document per file, reading in blocks of lines.</summary>
    public void AddFiles(IReadOnlyList<string> paths, IProgress<TrainerProgress>? progress = null)
    {
        long total = paths.Sum(p => new FileInfo(p).Length), done = 0;
        var sb = new StringBuilder(1 << 20);
        foreach (var p in paths)
        {
            using var fs = File.OpenRead(p);
            using Stream s = p.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(fs, CompressionMode.Decompress) : fs;
            using var reader = new StreamReader(s, new UTF8Encoding(false, false), detectEncodingFromByteOrderMarks: false, 1 << 16);
            string? line;
            bool first = true;
            if (IsJsonl(p))
            {
                // Corpus shards (duet data build): one document per line in its "text" field.
                int lineNo = 0;
                while ((line = reader.ReadLine()) is not null)
                {
                    lineNo++;
                    if (line.Length == 0) continue;
                    AddText(JsonlText(line, p, lineNo));
                    if ((lineNo & 255) == 0)
                        progress?.Report(new TrainerProgress("counting", (done + fs.Position) / (double)Math.Max(1, total), $"{_words.Count:N0} distinct pre-tokens"));
                }
                done += fs.Length;
                continue;
            }
            while ((line = reader.ReadLine()) is not null)
            {
                // Feed paragraphs (blank-line separated) as units, so \n runs and the dummy prefix fall as in documents.
                if (!first) sb.Append('\n');
                sb.Append(line);
                first = false;
                if (line.Length == 0 || sb.Length > (1 << 20))
                {
                    AddText(sb.ToString());
                    sb.Clear();
                    first = true;
                    progress?.Report(new TrainerProgress("counting", (done + fs.Position) / (double)Math.Max(1, total), $"{_words.Count:N0} distinct pre-tokens"));
                }
            }
            if (sb.Length > 0) { AddText(sb.ToString()); sb.Clear(); }
            done += fs.Length;
        }
    }

    private static bool IsJsonl(string path) =>
        path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".jsonl.gz", StringComparison.OrdinalIgnoreCase);

    private static string JsonlText(string line, string path, int lineNo)
    {
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(line);
            if (doc.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object && doc.RootElement.TryGetProperty("text", out var t)
                && t.ValueKind == System.Text.Json.JsonValueKind.String)
                return t.GetString()!;
        }
        catch (System.Text.Json.JsonException) { }
        throw new InvalidDataException($"{path}:{lineNo}: not a JSON object with a string \"text\" field");
    }

    // ---- Pass 2: merges ---------------------------------------------------------------------

    public Tokenizer Train(IProgress<TrainerProgress>? progress = null)
    {
        var specials = new List<string> { "<unk>", "<s>", "</s>" };
        foreach (var s in _o.ExtraSpecialTokens) if (!specials.Contains(s)) specials.Add(s);
        var vocab = new List<string>(specials);
        for (int b = 0; b < 256; b++) vocab.Add($"<0x{b:X2}>");
        int reserved = vocab.Count;
        if (_o.VocabSize <= reserved + 1) throw new ArgumentException($"vocab size {_o.VocabSize} leaves no room after {reserved} special and byte tokens");

        // Alphabet: most frequent characters up to the coverage, '▁' always.
        var charCount = new Dictionary<int, long>();
        long totalChars = 0;
        foreach (var (w, c) in _words)
            for (int i = 0; i < w.Length;)
            {
                int cp = Text.CharClass.CodePointAt(w, i, out int n);
                CollectionsMarshal.GetValueRefOrAddDefault(charCount, cp, out _) += c;
                totalChars += c;
                i += n;
            }
        var alphabet = new List<int> { Space };
        long covered = charCount.GetValueOrDefault(Space);
        foreach (var (cp, c) in charCount.Where(kv => kv.Key != Space).OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key))
        {
            if (covered >= _o.CharacterCoverage * totalChars || vocab.Count + alphabet.Count >= _o.VocabSize) break;
            alphabet.Add(cp);
            covered += c;
        }
        var idOfChar = new Dictionary<int, int>();
        foreach (int cp in alphabet) { idOfChar[cp] = vocab.Count; vocab.Add(char.ConvertFromUtf32(cp)); }

        // Words as symbol arrays; characters outside the alphabet are -1 and never merge.
        var words = new List<int[]>(_words.Count);
        var counts = new List<long>(_words.Count);
        foreach (var (w, c) in _words.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var sym = new List<int>(w.Length);
            for (int i = 0; i < w.Length;)
            {
                int cp = Text.CharClass.CodePointAt(w, i, out int n);
                sym.Add(idOfChar.TryGetValue(cp, out int id) ? id : -1);
                i += n;
            }
            if (sym.Count < 2) continue;
            words.Add(sym.ToArray());
            counts.Add(c);
        }
        _words.Clear();

        var shape = new List<Shape>(vocab.Select(ShapeOf));
        var pairCount = new Dictionary<long, long>();
        var where = new Dictionary<long, List<int>>();
        for (int wi = 0; wi < words.Count; wi++)
        {
            var s = words[wi];
            for (int i = 0; i + 1 < s.Length; i++)
            {
                if (s[i] < 0 || s[i + 1] < 0 || !CanMerge(shape[s[i]], shape[s[i + 1]])) continue;
                long k = Key(s[i], s[i + 1]);
                CollectionsMarshal.GetValueRefOrAddDefault(pairCount, k, out _) += counts[wi];
                ref var list = ref CollectionsMarshal.GetValueRefOrAddDefault(where, k, out bool exists);
                if (!exists) list = new List<int>();
                if (list!.Count == 0 || list[^1] != wi) list.Add(wi);
            }
        }
        // Max-heap on count; ties go to the pair with the smaller ids, for a deterministic result.
        var heap = new PriorityQueue<long, (long Count, long Key)>(Comparer<(long Count, long Key)>.Create((a, b) =>
            a.Count != b.Count ? b.Count.CompareTo(a.Count) : a.Key.CompareTo(b.Key)));
        foreach (var (k, c) in pairCount) heap.Enqueue(k, (c, k));

        var merges = new List<(string, string)>();
        var stamp = new int[words.Count];
        var touched = new HashSet<long>();
        int target = _o.VocabSize;
        while (vocab.Count < target && heap.TryDequeue(out long key, out var pri))
        {
            long current = pairCount.GetValueOrDefault(key);
            if (current != pri.Count) { if (current > 0) heap.Enqueue(key, (current, key)); continue; }
            if (current < _o.MinPairFrequency) break;
            int a = (int)(key >> 32), b = (int)(uint)key;
            if (shape[a].Length + shape[b].Length > _o.MaxTokenLength) { pairCount.Remove(key); continue; }
            int ab = vocab.Count;
            vocab.Add(vocab[a] + vocab[b]);
            shape.Add(ShapeOf(vocab[ab]));
            merges.Add((vocab[a], vocab[b]));
            touched.Clear();
            var list = where[key];
            where.Remove(key);
            pairCount.Remove(key);
            foreach (int wi in list)
            {
                if (stamp[wi] == ab) continue;
                stamp[wi] = ab;
                MergeInWord(wi, a, b, ab);
            }
            foreach (long k in touched)
                if (pairCount.TryGetValue(k, out long c) && c > 0) heap.Enqueue(k, (c, k));
            if ((merges.Count & 255) == 0)
                progress?.Report(new TrainerProgress("merging", (vocab.Count - reserved) / (double)(target - reserved), $"{vocab.Count:N0} / {target:N0} tokens"));

            void MergeInWord(int wi, int a, int b, int ab)
            {
                var s = words[wi];
                long c = counts[wi];
                int n = s.Length, o = 0;
                bool changed = false;
                var result = s; // merge in place: o <= i always
                for (int i = 0; i < n; i++)
                {
                    if (i + 1 < n && s[i] == a && s[i + 1] == b)
                    {
                        int prev = o > 0 ? result[o - 1] : -1, next = i + 2 < n ? s[i + 2] : -1;
                        if (prev >= 0) { Add(prev, a, -c); Add(prev, ab, c, wi); }
                        if (next >= 0) { Add(b, next, -c); Add(ab, next, c, wi); }
                        result[o++] = ab;
                        i++;
                        changed = true;
                    }
                    else result[o++] = s[i];
                }
                if (changed && o != n) words[wi] = result[..o];
            }

            void Add(int x, int y, long delta, int wi = -1)
            {
                if (x < 0 || y < 0 || !CanMerge(shape[x], shape[y])) return;
                long k = Key(x, y);
                if (k == key) return; // the pair being merged is gone everywhere
                ref long cnt = ref CollectionsMarshal.GetValueRefOrAddDefault(pairCount, k, out _);
                cnt += delta;
                touched.Add(k);
                if (wi >= 0)
                {
                    ref var l = ref CollectionsMarshal.GetValueRefOrAddDefault(where, k, out bool ex);
                    if (!ex) l = new List<int>();
                    if (l!.Count == 0 || l[^1] != wi) l.Add(wi);
                }
            }
        }
        progress?.Report(new TrainerProgress("merging", 1, $"{vocab.Count:N0} tokens, {merges.Count:N0} merges"));
        return Build(vocab.ToArray(), specials, merges);
    }

    private static long Key(int a, int b) => ((long)a << 32) | (uint)b;

    private static Tokenizer Build(string[] vocab, List<string> specials, List<(string, string)> merges)
    {
        var types = new TokenType[vocab.Length];
        Array.Fill(types, TokenType.Normal);
        types[0] = TokenType.Unknown;
        var model = BpeModel.FromMerges(vocab, types, merges, byteFallback: true, ignoreMerges: false, fuseUnknown: true, unknownId: 0);
        var added = specials.Select((s, i) => new AddedToken(i, s, Special: true)).ToList();
        var normalizer = new SequenceNormalizer([new PrependNormalizer(Space.ToString()), new ReplaceNormalizer(" ", Space.ToString())]);
        return new Tokenizer(model, normalizer, null, new TemplatePostProcessor([1], []), new AddedVocabulary(added),
            DecoderKind.SentencePiece, TokenizerSource.Trained, parseSpecialByDefault: true)
        {
            BosId = 1,
            EosId = 2,
            ChatTemplate = ChatMlTemplate,
        };
    }

    /// <summary>ChatML, as Yi and Qwen use; turns end with &lt;|im_end|&gt;.</summary>
    public const string ChatMlTemplate =
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
        + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
}
