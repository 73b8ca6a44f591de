// `duet data tokenize`: the JSONL text shards of a corpus folder -> binary token shards (layout in
// Duet.Formats/Tokens/TokenFormat.cs), one per text shard, in manifest order, then manifest.json rewritten with a "tokens" section.
//
// A document becomes BOS (if the tokenizer has one) + Encode(text) + EOS (if it has one); special tokens
// written in the text (a literal "<s>") are encoded as text, never as the special id. Documents are encoded
// in parallel in batches and written in input order, so the output is the same byte for byte whatever the
// thread count. Each text shard's SHA-256 (of its JSONL text, also when the shard is stored as .jsonl.gz) is
// checked against the manifest while it is read.
// Files are written as NAME.tmp and renamed when complete, the manifest last: a killed run leaves no
// incomplete file under a final name (it may leave complete new shards that the old manifest does not describe;
// their SHA-256 then differs from the manifest's and TokenCorpus.Open(verify: true) says so).
using System.Buffers.Binary;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using Duet.Data.LanguageId;
using Duet.Formats.Tokens;
using Duet.Tokenizers;
using Duet.Tokenizers.Loaders;

namespace Duet.Data.Tokens;

public sealed class CorpusTokenizer(Tokenizer tokenizer, string tokenizerName, string tokenizerSha256)
{
    public const string Folder = "tokens";

    /// <summary>Encoding threads; the output does not depend on it.</summary>
    public int Threads { get; set; } = Environment.ProcessorCount;

    /// <summary>Called after every batch with the documents and tokens written so far.</summary>
    public Action<long, long>? Progress { get; set; }

    public Tokenizer Tokenizer => tokenizer;

    /// <summary>Loads the tokenizer at <paramref name="path"/> (a file or a folder, as Tokenizer.Load) and hashes the file read.</summary>
    public static CorpusTokenizer Load(string path)
    {
        var file = TokenizerLoader.ResolveFile(path);
        string sha;
        using (var f = File.OpenRead(file)) sha = Convert.ToHexStringLower(SHA256.HashData(f));
        return new CorpusTokenizer(TokenizerLoader.Load(file), Path.GetFileName(file), sha);
    }

    /// <summary>The code a document's language gets in the .idx file, from the "lang" of its JSONL line.</summary>
    public static TokenLanguage LanguageOf(string lang) => lang switch
    {
        Languages.English => TokenLanguage.English,
        Languages.Chinese => TokenLanguage.Chinese,
        Languages.Mixed => TokenLanguage.Mixed,
        _ => TokenLanguage.Other,
    };

    /// <summary>The manifest of a folder written by `duet data build`, which must list text shards.</summary>
    public static Manifest ReadCorpus(string dir)
    {
        var m = ManifestFile.Read(dir);
        if (m.Shards.Count == 0)
            throw new InvalidDataException($"{Path.Combine(dir, ManifestFile.Name)}: the manifest lists no text shards (did the build keep any document?)");
        return m;
    }

    public Manifest Run(string dir) => Run(dir, ReadCorpus(dir));

    /// <summary>
    /// Tokenizes every text shard of <paramref name="manifest"/> (read from <paramref name="dir"/>) and rewrites the
    /// manifest; with <paramref name="outDir"/>, the token shards and a manifest whose text shard paths point back to
    /// <paramref name="dir"/> go there instead, and the corpus folder is left as it was (a shipped corpus stays clean).
    /// </summary>
    public Manifest Run(string dir, Manifest manifest, string? outDir = null)
    {
        if (outDir is not null && Path.GetFullPath(outDir) != Path.GetFullPath(dir))
        {
            Directory.CreateDirectory(outDir);
            manifest.Shards = manifest.Shards
                .Select(s => s with { Path = Path.GetRelativePath(outDir, Path.Combine(dir, s.Path)).Replace('\\', '/') }).ToList();
            dir = outDir;
        }
        ArgumentOutOfRangeException.ThrowIfLessThan(Threads, 1, nameof(Threads));
        if (tokenizer.VocabSize <= 0) throw new ArgumentException("the tokenizer has an empty vocabulary");
        var stems = manifest.Shards.GroupBy(s => Stem(s.Path), StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (stems is not null)
            throw new InvalidDataException($"{Path.Combine(dir, ManifestFile.Name)}: two text shards are named {stems.Key} ({string.Join(", ", stems.Select(s => s.Path))}); their token shards would collide");
        var tokens = new TokenManifest
        {
            Tokenizer = tokenizerName,
            TokenizerSha256 = tokenizerSha256,
            VocabSize = tokenizer.VocabSize,
            BytesPerToken = TokenFormat.BytesPerToken(tokenizer.VocabSize),
            Bos = tokenizer.BosId >= 0 ? tokenizer.BosId : null,
            Eos = tokenizer.EosId >= 0 ? tokenizer.EosId : null,
        };
        Directory.CreateDirectory(Path.Combine(dir, Folder));
        var totals = new Totals();
        foreach (var text in manifest.Shards) tokens.Shards.Add(WriteShard(dir, text, tokens, totals));
        manifest.Tokens = tokens;
        ManifestFile.Write(dir, manifest);
        return manifest;
    }

    private sealed class Totals { public long Documents, Tokens; }

    /// <summary>train/train-00000.jsonl (or .jsonl.gz) -> train-00000, the token shard's name.</summary>
    private static string Stem(string textPath)
    {
        var name = Path.GetFileName(textPath);
        if (name.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)) name = name[..^3];
        return Path.GetFileNameWithoutExtension(name);
    }

    /// <summary>Documents encoded together: enough to keep the cores busy, few enough characters to bound memory.</summary>
    private const int BatchDocuments = 256, BatchCharacters = 4 << 20;

    private TokenShardInfo WriteShard(string dir, ShardInfo text, TokenManifest tokens, Totals totals)
    {
        var stem = Stem(text.Path);
        string binRel = $"{Folder}/{stem}.bin", idxRel = $"{Folder}/{stem}.idx";
        string bin = Path.Combine(dir, binRel), idx = Path.Combine(dir, idxRel);
        string binTmp = bin + ".tmp", idxTmp = idx + ".tmp";
        var textPath = Path.Combine(dir, text.Path);
        if (!File.Exists(textPath)) throw new FileNotFoundException($"{textPath}: missing ({Path.Combine(dir, ManifestFile.Name)} lists it)", textPath);
        var byLang = tokens.Counts.TryGetValue(text.Split, out var d) ? d : tokens.Counts[text.Split] = new SortedDictionary<string, TokenCount>(StringComparer.Ordinal);
        var offsets = new List<long> { 0 };
        var languages = new List<byte>();
        int bos = tokenizer.BosId, eos = tokenizer.EosId;
        try
        {
            long count = 0;
            using (var fs = new FileStream(binTmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            using (var textSha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
            {
                fs.Write(new byte[TokenFormat.BinHeaderSize]); // the header once the counts are known
                var writer = new TokenWriter(fs, tokens.BytesPerToken, tokens.VocabSize, bin);
                var batch = new List<CorpusDocument>(BatchDocuments);
                var ids = new int[BatchDocuments][];
                long chars = 0;
                void Flush()
                {
                    Encode(batch, ids);
                    for (int i = 0; i < batch.Count; i++)
                    {
                        if (bos >= 0) writer.Write(bos);
                        writer.Write(ids[i]);
                        if (eos >= 0) writer.Write(eos);
                        long n = writer.Count - offsets[^1];
                        offsets.Add(writer.Count);
                        languages.Add((byte)LanguageOf(batch[i].Lang));
                        var c = byLang.TryGetValue(batch[i].Lang, out var tc) ? tc : byLang[batch[i].Lang] = new TokenCount();
                        c.Documents++; c.Tokens += n;
                        totals.Documents++; totals.Tokens += n;
                        ids[i] = null!;
                    }
                    batch.Clear(); chars = 0;
                    Progress?.Invoke(totals.Documents, totals.Tokens);
                }
                foreach (var doc in ReadDocuments(textPath, textSha))
                {
                    batch.Add(doc); chars += doc.Text.Length;
                    if (batch.Count == BatchDocuments || chars >= BatchCharacters) Flush();
                }
                if (batch.Count > 0) Flush();
                writer.Flush();
                count = writer.Count;

                var sha = Convert.ToHexStringLower(textSha.GetHashAndReset());
                if (!string.Equals(sha, text.Sha256, StringComparison.OrdinalIgnoreCase))
                    throw new InvalidDataException($"{textPath}: SHA-256 {sha}, but the manifest records {text.Sha256}: the shard changed after `duet data build`");
                if (languages.Count != text.Documents)
                    throw new InvalidDataException($"{textPath}: {languages.Count} documents, but the manifest records {text.Documents}");

                var header = new byte[TokenFormat.BinHeaderSize];
                TokenFormat.WriteBinHeader(header, tokens.BytesPerToken, count, languages.Count, tokens.VocabSize);
                fs.Position = 0;
                fs.Write(header);
                fs.Flush(flushToDisk: true);
            }
            string binSha;
            using (var f = new FileStream(binTmp, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan))
                binSha = Convert.ToHexStringLower(SHA256.HashData(f));
            string idxSha = WriteIndex(idxTmp, offsets, languages);
            File.Move(binTmp, bin, overwrite: true);
            File.Move(idxTmp, idx, overwrite: true);
            return new TokenShardInfo(binRel, idxRel, text.Path, text.Split, languages.Count, count, binSha, idxSha);
        }
        catch
        {
            TryDelete(binTmp);
            TryDelete(idxTmp);
            throw;
        }
    }

    private void Encode(List<CorpusDocument> batch, int[][] ids)
    {
        if (Threads == 1)
        {
            for (int i = 0; i < batch.Count; i++) ids[i] = tokenizer.Encode(batch[i].Text, addSpecialTokens: false, parseSpecial: false);
            return;
        }
        Parallel.For(0, batch.Count, new ParallelOptions { MaxDegreeOfParallelism = Threads },
            i => ids[i] = tokenizer.Encode(batch[i].Text, addSpecialTokens: false, parseSpecial: false));
    }

    private static string WriteIndex(string path, List<long> offsets, List<byte> languages)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using (var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
        {
            var buffer = new byte[1 << 16];
            TokenFormat.WriteIdxHeader(buffer, languages.Count);
            int n = TokenFormat.IdxHeaderSize;
            void Put(ReadOnlySpan<byte> bytes) { fs.Write(bytes); sha.AppendData(bytes); }
            foreach (long o in offsets)
            {
                if (n + 8 > buffer.Length) { Put(buffer.AsSpan(0, n)); n = 0; }
                BinaryPrimitives.WriteInt64LittleEndian(buffer.AsSpan(n), o);
                n += 8;
            }
            Put(buffer.AsSpan(0, n));
            Put(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(languages));
            fs.Flush(flushToDisk: true);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>The documents of a JSONL shard (.jsonl or .jsonl.gz), in order; every byte of text read goes through <paramref name="sha"/>.</summary>
    private static IEnumerable<CorpusDocument> ReadDocuments(string path, IncrementalHash sha)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        // A cut .gz reads as its prefix without an error; the hash of the text then differs from the manifest's.
        using Stream fs = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionMode.Decompress) : file;
        var buffer = new byte[1 << 20];
        int filled = 0;
        long line = 0;
        while (true)
        {
            if (filled == buffer.Length) Array.Resize(ref buffer, buffer.Length * 2); // a line longer than the buffer
            int n = fs.Read(buffer, filled, buffer.Length - filled);
            if (n == 0) break;
            sha.AppendData(buffer, filled, n);
            int end = filled + n, start = 0, nl;
            while ((nl = Array.IndexOf(buffer, (byte)'\n', start, end - start)) >= 0)
            {
                yield return Parse(path, ++line, buffer, start, nl - start);
                start = nl + 1;
            }
            filled = end - start;
            Buffer.BlockCopy(buffer, start, buffer, 0, filled);
        }
        if (filled > 0) yield return Parse(path, ++line, buffer, 0, filled); // no final LF
    }

    private static CorpusDocument Parse(string path, long line, byte[] buffer, int start, int length)
    {
        CorpusDocument? doc;
        try { doc = JsonSerializer.Deserialize<CorpusDocument>(buffer.AsSpan(start, length), DataPipeline.OutputJson); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: line {line}: not a document: {e.Message}", e); }
        if (doc is null || doc.Text is null || doc.Lang is null)
            throw new InvalidDataException($"{path}: line {line}: a document needs \"text\" and \"lang\"");
        return doc;
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>Tokens to little-endian uint16 or uint32 through one reused buffer.</summary>
    private sealed class TokenWriter(Stream stream, int bytesPerToken, int vocabSize, string path)
    {
        private readonly byte[] _buffer = new byte[1 << 16];
        private int _n;
        public long Count { get; private set; }

        public void Write(ReadOnlySpan<int> ids)
        {
            foreach (int id in ids) Write(id);
        }

        public void Write(int id)
        {
            if ((uint)id >= (uint)vocabSize)
                throw new InvalidOperationException($"{path}: the tokenizer produced id {id}, outside its vocabulary of {vocabSize}");
            if (_n + 4 > _buffer.Length) Flush();
            if (bytesPerToken == 2) BinaryPrimitives.WriteUInt16LittleEndian(_buffer.AsSpan(_n), (ushort)id);
            else BinaryPrimitives.WriteUInt32LittleEndian(_buffer.AsSpan(_n), (uint)id);
            _n += bytesPerToken;
            Count++;
        }

        public void Flush()
        {
            stream.Write(_buffer, 0, _n);
            _n = 0;
        }
    }
}
