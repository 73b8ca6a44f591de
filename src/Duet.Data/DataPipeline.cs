// `duet data build`: sources -> clean -> language tag -> quality filter -> exact dedup -> near dedup ->
// train/validation split -> JSONL text shards + manifest.json + dropped.jsonl (samples per reason).
// One pass, in a fixed order (sources as the recipe lists them, files in ordinal order), so the same recipe and
// sources give byte-identical output: the per-document stages (clean, tag, quality, dedup keys) run in parallel
// over batches of documents, and their results are committed (dedup, shards, counts) in input order. Every file is written to a temporary name and renamed when complete,
// the manifest last: a killed run leaves no half-written file under a final name.
// Under MPI (mpirun -np N duet data build) the source files are dealt round the ranks in rounds (rank r prepares
// files r·F .. r·F + F − 1 of each round of N·F); the prepared parts, MinHash signatures and dedup keys included, go
// to rank 0 in file order, which commits them exactly as one process does (same dedup decisions, same shards,
// byte-identical output) and alone writes the corpus; the source counts are summed over the ranks.
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Duet.Data.Dedup;
using Duet.Data.Filters;
using Duet.Data.LanguageId;
using Duet.Data.Normalize;
using Duet.Data.Sources;
using Duet.Mpi;

namespace Duet.Data;

/// <summary>A kept document as the shards store it (one JSON object per line).</summary>
public sealed record CorpusDocument(string Id, string Source, string Lang, string Text);

/// <summary>Documents and characters that one reason removed.</summary>
public sealed class DropCount
{
    public long Documents { get; set; }
    public long Characters { get; set; }
}

public sealed record ShardInfo(string Path, string Split, long Documents, long Characters, string Sha256);

public sealed class Manifest
{
    public string Recipe { get; set; } = "";
    public string RecipeSha256 { get; set; } = "";
    public Dictionary<string, SourceManifest> Sources { get; set; } = [];
    public SortedDictionary<string, DropCount> Dropped { get; set; } = new(StringComparer.Ordinal);
    /// <summary>Kept documents and characters by split, then language.</summary>
    public SortedDictionary<string, SortedDictionary<string, DropCount>> Kept { get; set; } = new(StringComparer.Ordinal);
    public List<ShardInfo> Shards { get; set; } = [];
    /// <summary>The token shards of `duet data tokenize` (Duet.Formats/Tokens/TokenManifest.cs); not written until it has run.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Duet.Formats.Tokens.TokenManifest? Tokens { get; set; }

    /// <summary>Reads a corpus manifest, with one clear error for a missing or malformed file.</summary>
    public static Manifest Load(string path)
        => Duet.Formats.Tokens.CorpusManifest.Load<Manifest>(path, Duet.Data.Tokens.ManifestFile.Json);
}

public sealed class SourceManifest
{
    public string[] Paths { get; set; } = [];
    public string? Package { get; set; }
    public string? PackageVersion { get; set; }
    public long Files { get; set; }
    public long Documents { get; set; }
    public long Characters { get; set; }
    /// <summary>Bytes read (decompressed), for throughput in MB/s.</summary>
    public long Bytes { get; set; }
    public SortedDictionary<string, long> Skipped { get; set; } = new(StringComparer.Ordinal);
}

/// <param name="world">the MPI job this process is a rank of (null: build alone)</param>
public sealed class DataPipeline(Recipe recipe, string outDir, MpiWorld? world = null) : IDisposable
{
    private bool Writes => world is not { Size: > 1 } || world.Rank == 0;

    public void Dispose()
    {
        _train?.Dispose();
        _validation?.Dispose();
    }

    public static readonly JsonSerializerOptions OutputJson = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // Chinese stays readable in the shards
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
    };
    private static readonly JsonSerializerOptions s_manifestJson = new(OutputJson) { WriteIndented = true };

    /// <summary>Seconds rank 0 spent committing (dedup decisions, shards) in a parallel build: the part that does not scale with ranks.</summary>
    public double CommitSeconds { get; private set; }

    /// <summary>Called now and then with the number of source documents read and their characters.</summary>
    public Action<long, long>? Progress { get; set; }

    private readonly Manifest _manifest = new();
    private readonly Dictionary<string, List<string>> _samples = [];
    private readonly HashSet<UInt128> _exact = [];
    private MinHasher? _hasher;
    private MinHashIndex? _index;
    private ShardWriter? _train, _validation;

    /// <summary>Builds the corpus; returns its manifest (under MPI, on rank 0; the other ranks get an empty one).</summary>
    public Manifest Run(string recipePath)
    {
        _manifest.Recipe = recipe.Name;
        _manifest.RecipeSha256 = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(recipePath)));
        if (recipe.Dedup.Near) { _hasher = new MinHasher(recipe.Dedup.MinHash); _index = new MinHashIndex(recipe.Dedup.MinHash); }
        if (Writes)
        {
            Directory.CreateDirectory(outDir);
            _train = new ShardWriter(outDir, "train", recipe.ShardCharacters, recipe.Compress, _manifest);
            _validation = new ShardWriter(outDir, "validation", recipe.ShardCharacters, recipe.Compress, _manifest);
        }
        if (world is { Size: > 1 }) ReadSourcesParallel(world);
        else ReadSources();
        if (!Writes) return _manifest;
        WriteSamples();
        AtomicWrite(Path.Combine(outDir, "manifest.json"), JsonSerializer.SerializeToUtf8Bytes(_manifest, s_manifestJson));
        return _manifest;
    }

    private void ReadSources()
    {
        long read = 0, chars = 0;
        foreach (var spec in recipe.Sources)
        {
            var src = List(spec, countMissing: true);
            var stats = src.Stats;
            var batch = new List<SourceDocument>(Batch);
            foreach (var doc in FileSource.Read(spec.Name, src.Root, src.Files, stats, src.Format, spec.JsonField, deferExtraction: true))
            {
                batch.Add(doc);
                read++; chars += doc.Text.Length;
                if (batch.Count == Batch) { ProcessBatch(batch); Progress?.Invoke(read, chars); }
            }
            ProcessBatch(batch);
            _manifest.Sources[spec.Name] = ManifestEntry(spec, src.Debian, stats.Files, stats.Documents, stats.Characters, stats.Bytes, stats.Skipped);
        }
        Progress?.Invoke(read, chars);
        _train!.Close();
        _validation!.Close();
    }

    /// <summary>Files per rank per round of a parallel build: few enough to balance the ranks, enough to amortize a round's messages.</summary>
    private const int FilesPerRank = 16;

    private void ReadSourcesParallel(MpiWorld w)
    {
        // Every rank lists the same files in the same order (as FileSource.Read sorts them); missing paths are counted once, by rank 0.
        var specs = new List<(SourceSpec Spec, SourceFiles Src)>();
        var files = new List<(int Source, string Path)>();
        foreach (var spec in recipe.Sources)
        {
            var src = List(spec, countMissing: w.Rank == 0);
            files.AddRange(src.Files.OrderBy(f => f, StringComparer.Ordinal).Select(f => (specs.Count, f)));
            specs.Add((spec, src));
        }
        long read = 0, chars = 0;
        int ranks = w.Size, round = ranks * FilesPerRank;
        var counts = new int[ranks];
        for (int start = 0; start < files.Count; start += round)
        {
            var docs = new List<SourceDocument>();
            int first = start + w.Rank * FilesPerRank;
            for (int f = first; f < Math.Min(first + FilesPerRank, files.Count); f++)
            {
                var (si, path) = files[f];
                var (spec, src) = specs[si];
                docs.AddRange(FileSource.Read(spec.Name, src.Root, [path], src.Stats, src.Format, spec.JsonField, deferExtraction: true));
            }
            var parts = new List<Part>[docs.Count];
            Parallel.For(0, docs.Count, i => parts[i] = Prepare(docs[i]));
            var bytes = PartCodec.Write(parts, docs);
            w.AllGather<int>([bytes.Length], counts);
            var all = new byte[w.Rank == 0 ? counts.Sum(c => (long)c) : 0];
            w.GatherV<byte>(bytes, all, counts, 0);
            if (w.Rank != 0) continue;
            // Rank 0 commits the round's parts in file order: rank 0's files first, then rank 1's, ...
            var commit = System.Diagnostics.Stopwatch.StartNew();
            int at = 0;
            foreach (int c in counts)
            {
                foreach (var (list, docChars) in PartCodec.Read(all.AsSpan(at, c)))
                {
                    foreach (var p in list) Commit(p);
                    read++; chars += docChars;
                }
                at += c;
            }
            CommitSeconds += commit.Elapsed.TotalSeconds;
            Progress?.Invoke(read, chars);
        }
        // The source counts, summed over the ranks (each counted the files it read).
        foreach (var (spec, src) in specs)
        {
            var stats = src.Stats;
            var sums = new long[] { stats.Files, stats.Documents, stats.Characters, stats.Bytes };
            w.AllReduce<long>(sums, MpiOp.Sum);
            var skipped = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(stats.Skipped));
            w.AllGather<int>([skipped.Length], counts);
            var all = new byte[w.Rank == 0 ? counts.Sum() : 0];
            w.GatherV<byte>(skipped, all, counts, 0);
            if (w.Rank != 0) continue;
            var merged = new SortedDictionary<string, long>(StringComparer.Ordinal);
            int at = 0;
            foreach (int c in counts)
            {
                foreach (var (k, v) in JsonSerializer.Deserialize<Dictionary<string, long>>(all.AsSpan(at, c))!) merged[k] = merged.GetValueOrDefault(k) + v;
                at += c;
            }
            _manifest.Sources[spec.Name] = ManifestEntry(spec, src.Debian, sums[0], sums[1], sums[2], sums[3], merged);
        }
        Progress?.Invoke(read, chars);
        _train?.Close();
        _validation?.Close();
    }

    /// <summary>A round's prepared parts as bytes for rank 0: per source document, its characters and its parts.</summary>
    private static class PartCodec
    {
        public static byte[] Write(List<Part>[] parts, List<SourceDocument> docs)
        {
            using var ms = new MemoryStream();
            using (var bw = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
            {
                bw.Write(parts.Length);
                for (int i = 0; i < parts.Length; i++)
                {
                    bw.Write((long)docs[i].Text.Length);
                    bw.Write(parts[i].Count);
                    foreach (var p in parts[i])
                    {
                        bw.Write(p.Doc.Source); bw.Write(p.Doc.Id); bw.Write(p.Text); bw.Write(p.Lang);
                        bw.Write(p.DropReason is not null);
                        if (p.DropReason is not null) bw.Write(p.DropReason);
                        bw.Write((ulong)(p.ExactKey >> 64)); bw.Write((ulong)p.ExactKey);
                        bw.Write(p.Signature?.Length ?? -1);
                        if (p.Signature is not null) foreach (var v in p.Signature) bw.Write(v);
                        bw.Write(p.Validation);
                    }
                }
            }
            if (ms.Length > int.MaxValue) throw new InvalidDataException($"one round of {FilesPerRank} files prepared {ms.Length:N0} bytes, more than one MPI message holds: split the sources into smaller files");
            return ms.ToArray();
        }

        public static List<(List<Part> Parts, long Characters)> Read(ReadOnlySpan<byte> bytes)
        {
            using var br = new BinaryReader(new MemoryStream(bytes.ToArray()), Encoding.UTF8);
            int n = br.ReadInt32();
            var result = new List<(List<Part>, long)>(n);
            for (int i = 0; i < n; i++)
            {
                long chars = br.ReadInt64();
                int k = br.ReadInt32();
                var list = new List<Part>(k);
                for (int j = 0; j < k; j++)
                {
                    string source = br.ReadString(), id = br.ReadString(), text = br.ReadString(), lang = br.ReadString();
                    string? reason = br.ReadBoolean() ? br.ReadString() : null;
                    ulong hi = br.ReadUInt64(), lo = br.ReadUInt64();
                    int sl = br.ReadInt32();
                    ulong[]? sig = sl < 0 ? null : new ulong[sl];
                    for (int x = 0; x < sl; x++) sig![x] = br.ReadUInt64();
                    bool validation = br.ReadBoolean();
                    list.Add(new Part(new SourceDocument(source, id, ""), text, lang, reason, new UInt128(hi, lo), sig, validation));
                }
                result.Add((list, chars));
            }
            return result;
        }
    }

    /// <summary>A source's files (as the recipe or the Debian package lists them), root, format and counts.</summary>
    private sealed record SourceFiles(List<string> Files, string Root, SourceFormat? Format, DebianSource? Debian, SourceStats Stats);

    /// <param name="countMissing">count missing paths in the stats (false on the ranks after the first of a parallel build, so they count once)</param>
    private SourceFiles List(SourceSpec spec, bool countMissing)
    {
        var stats = new SourceStats();
        var debian = spec.Debian is null ? null : DebianSources.Find(spec.Debian);
        var files = debian is not null ? DebianSources.Files(debian).ToList()
            : spec.Paths.SelectMany(p => Expand(Path.Combine(recipe.BaseDirectory, p), countMissing ? stats : new SourceStats())).ToList();
        return new SourceFiles(files, debian?.Root ?? recipe.BaseDirectory, debian?.Format ?? spec.Format, debian, stats);
    }

    private static SourceManifest ManifestEntry(SourceSpec spec, DebianSource? debian, long files, long documents, long characters, long bytes,
        SortedDictionary<string, long> skipped) => new()
    {
        Paths = debian is null ? spec.Paths : [debian.Root],
        Package = debian?.Package,
        PackageVersion = debian is null ? null : DebianSources.PackageVersion(debian.Package),
        Files = files, Documents = documents, Characters = characters, Bytes = bytes, Skipped = skipped,
    };

    private static IEnumerable<string> Expand(string path, SourceStats stats)
    {
        if (File.Exists(path)) return [path];
        if (Directory.Exists(path)) return Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories);
        stats.Skip("missing_path");
        return [];
    }

    /// <summary>
    /// A document (or the part of a mixed one in one language) after the stages that depend on it alone:
    /// cleaning, tagging, quality rules, and the keys of dedup. Computed in parallel; committed in input order.
    /// </summary>
    private sealed record Part(SourceDocument Doc, string Text, string Lang, string? DropReason, UInt128 ExactKey, ulong[]? Signature, bool Validation);

    private List<Part> Prepare(SourceDocument doc)
    {
        var text = TextCleaner.Clean(doc.Readable());
        if (text.Length == 0) return [new Part(doc, doc.Text, "", "empty_after_cleaning", default, null, false)];
        var sections = Sections.Split(text, recipe.SectionCharacters);
        if (sections.Count == 1) return PrepareSection(doc, text);
        var parts = new List<Part>();
        for (int k = 0; k < sections.Count; k++) parts.AddRange(PrepareSection(doc with { Id = $"{doc.Id}#s{k}" }, sections[k]));
        return parts;
    }

    // One language: the section as it is. Several (LanguageSplitter): each language's part judged on its own.
    private List<Part> PrepareSection(SourceDocument doc, string text)
    {
        var split = LanguageSplitter.Split(text);
        if (split.Count == 1) return [Judge(doc, split[0].Text, split[0].Language)];
        return split.OrderBy(p => p.Language, StringComparer.Ordinal)
            .Select(p => Judge(doc with { Id = $"{doc.Id}#{p.Language}" }, p.Text, p.Language)).ToList();
    }

    private Part Judge(SourceDocument doc, string text, string lang)
    {
        if (!recipe.Languages.Contains(lang)) return new Part(doc, text, lang, $"language.{lang}", default, null, false);
        var reason = lang == Languages.Chinese ? QualityFilter.CheckChinese(text, recipe.Quality)
            : lang == Languages.English ? QualityFilter.CheckEnglish(text, recipe.Quality) : null;
        if (reason is not null) return new Part(doc, text, lang, $"quality.{reason}", default, null, false);
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(text));
        bool validation = BitConverter.ToUInt64(hash, 0) % 1_000_000 < (ulong)(recipe.Split.ValidationFraction * 1_000_000);
        return new Part(doc, text, lang, null, recipe.Dedup.Exact ? ExactKey(text) : default, _hasher?.Signature(text), validation);
    }

    // The order-dependent stages: dedup against what was kept before, then the shards and counts.
    private void Commit(Part p)
    {
        if (p.DropReason is not null) { Drop(p.DropReason, p.Doc.Id, p.Text); return; }
        if (recipe.Dedup.Exact && !_exact.Add(p.ExactKey)) { Drop("dedup.exact", p.Doc.Id, p.Text); return; }
        if (_index is not null && _index.IsDuplicate(p.Signature!)) { Drop("dedup.near", p.Doc.Id, p.Text); return; }
        (p.Validation ? _validation! : _train!).Add(new CorpusDocument(p.Doc.Id, p.Doc.Source, p.Lang, p.Text));
        string split = p.Validation ? "validation" : "train";
        var byLang = _manifest.Kept.TryGetValue(split, out var d) ? d : _manifest.Kept[split] = new SortedDictionary<string, DropCount>(StringComparer.Ordinal);
        var c = byLang.TryGetValue(p.Lang, out var dc) ? dc : byLang[p.Lang] = new DropCount();
        c.Documents++; c.Characters += p.Text.Length;
    }

    /// <summary>Documents prepared together: enough to keep both cores busy, few enough to bound memory.</summary>
    private const int Batch = 512;

    private void ProcessBatch(List<SourceDocument> batch)
    {
        var parts = new List<Part>[batch.Count];
        Parallel.For(0, batch.Count, i => parts[i] = Prepare(batch[i]));
        foreach (var list in parts) foreach (var p in list) Commit(p);
        batch.Clear();
    }

    // Exact duplicates compare case-folded text with all whitespace runs as one space.
    private static UInt128 ExactKey(string text)
    {
        var sb = new StringBuilder(text.Length);
        bool space = false;
        foreach (char ch in text)
        {
            if (char.IsWhiteSpace(ch)) { space = sb.Length > 0; continue; }
            if (space) { sb.Append(' '); space = false; }
            sb.Append(char.ToLowerInvariant(ch));
        }
        var h = SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString()));
        return new UInt128(BitConverter.ToUInt64(h, 0), BitConverter.ToUInt64(h, 8));
    }

    private void Drop(string reason, string id, string text)
    {
        var c = _manifest.Dropped.TryGetValue(reason, out var dc) ? dc : _manifest.Dropped[reason] = new DropCount();
        c.Documents++; c.Characters += text.Length;
        var list = _samples.TryGetValue(reason, out var l) ? l : _samples[reason] = [];
        if (list.Count < recipe.SamplesPerReason)
            list.Add(JsonSerializer.Serialize(new { reason, id, text = text.Length > 2000 ? text[..2000] + "…" : text }, OutputJson));
    }

    private void WriteSamples()
    {
        var sb = new StringBuilder();
        foreach (var reason in _samples.Keys.Order(StringComparer.Ordinal))
            foreach (var line in _samples[reason]) sb.Append(line).Append('\n');
        AtomicWrite(Path.Combine(outDir, "dropped.jsonl"), Encoding.UTF8.GetBytes(sb.ToString()));
    }

    private static void AtomicWrite(string path, byte[] bytes) => Duet.Formats.AtomicFile.Write(path, s => s.Write(bytes));

    /// <summary>JSONL shards of one split, each closed (hashed, renamed) when it reaches its character budget.</summary>
    /// The SHA-256 is of the JSONL bytes, compressed or not: gzip output can differ between zlib versions while the
    /// text cannot.
    private sealed class ShardWriter(string dir, string split, long maxChars, bool compress, Manifest manifest) : IDisposable
    {
        /// <summary>After a failure: the open shard stays a .tmp file, never a shard under its final name.</summary>
        public void Dispose()
        {
            _out?.Dispose();
            _file?.Dispose();
            _sha?.Dispose();
            _file = null;
        }

        private FileStream? _file;
        private Stream? _out; // the file, or a gzip stream over it
        private IncrementalHash? _sha;
        private long _docs, _chars;
        private int _index;
        private string _path = "";

        public void Add(CorpusDocument doc)
        {
            if (_file is null) Open();
            var line = JsonSerializer.SerializeToUtf8Bytes(doc, OutputJson);
            _out!.Write(line); _out.WriteByte((byte)'\n');
            _sha!.AppendData(line); _sha.AppendData("\n"u8);
            _docs++; _chars += doc.Text.Length;
            if (_chars >= maxChars) Close();
        }

        private void Open()
        {
            Directory.CreateDirectory(Path.Combine(dir, split));
            _path = Path.Combine(split, $"{split}-{_index++:D5}.jsonl{(compress ? ".gz" : "")}");
            _file = new FileStream(Path.Combine(dir, _path + ".tmp"), FileMode.Create, FileAccess.Write);
            _out = compress ? new System.IO.Compression.GZipStream(_file, System.IO.Compression.CompressionLevel.SmallestSize, leaveOpen: true) : _file;
            _sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            _docs = 0; _chars = 0;
        }

        public void Close()
        {
            if (_file is null) return;
            if (_out != _file) _out!.Dispose(); // the gzip trailer
            _out = null;
            _file.Flush(flushToDisk: true);
            _file.Dispose();
            File.Move(Path.Combine(dir, _path + ".tmp"), Path.Combine(dir, _path), overwrite: true);
            manifest.Shards.Add(new ShardInfo(_path.Replace('\\', '/'), split, _docs, _chars, Convert.ToHexStringLower(_sha!.GetHashAndReset())));
            _sha.Dispose();
            _file = null;
        }
    }
}
