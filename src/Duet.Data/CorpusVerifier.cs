// `duet data verify DIR`: does a corpus folder hold what its manifest says? Every listed shard must exist, and its
// JSONL text (inflated, for .jsonl.gz) must have the manifest's SHA-256, document count and character count.
// The hash is of the JSONL bytes, not of the gzip file, so a corpus recompressed by another zlib still verifies.
using System.Security.Cryptography;
using System.Text.Json;
using Duet.Data.Sources;

namespace Duet.Data;

public static class CorpusVerifier
{
    /// <summary>Problems found, one line each; empty when every shard matches the manifest.</summary>
    public static List<string> Verify(string dir)
    {
        var manifest = Manifest.Load(Path.Combine(dir, "manifest.json"));
        var problems = new List<string>();
        foreach (var shard in manifest.Shards)
        {
            var path = Path.Combine(dir, shard.Path);
            if (!File.Exists(path)) { problems.Add($"{shard.Path}: missing"); continue; }
            try
            {
                using var stream = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? (Stream)new CheckedGzipStream(path) : File.OpenRead(path);
                using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                long docs = 0, chars = 0;
                var line = new MemoryStream();
                var buf = new byte[1 << 16];
                int n;
                while ((n = stream.Read(buf)) > 0)
                {
                    sha.AppendData(buf, 0, n);
                    for (int i = 0, start = 0; i < n; i++)
                    {
                        if (buf[i] != '\n') { if (i == n - 1) line.Write(buf, start, n - start); continue; }
                        line.Write(buf, start, i - start);
                        start = i + 1;
                        (docs, chars) = (docs + 1, chars + TextLength(line, shard.Path, docs + 1));
                        line.SetLength(0);
                    }
                }
                if (line.Length > 0) problems.Add($"{shard.Path}: the last line has no newline (truncated?)");
                var hash = Convert.ToHexStringLower(sha.GetHashAndReset());
                if (hash != shard.Sha256) problems.Add($"{shard.Path}: SHA-256 {hash}, manifest says {shard.Sha256}");
                if (docs != shard.Documents) problems.Add($"{shard.Path}: {docs} documents, manifest says {shard.Documents}");
                if (chars != shard.Characters) problems.Add($"{shard.Path}: {chars} characters, manifest says {shard.Characters}");
            }
            catch (Exception e) when (e is IOException or InvalidDataException or JsonException)
            {
                problems.Add($"{shard.Path}: {e.Message}");
            }
        }
        return problems;
    }

    private static long TextLength(MemoryStream line, string shard, long lineNo)
    {
        using var doc = JsonDocument.Parse(line.GetBuffer().AsMemory(0, (int)line.Length));
        if (!doc.RootElement.TryGetProperty("text", out var t) || t.ValueKind != JsonValueKind.String)
            throw new InvalidDataException($"line {lineNo} of {shard} has no string \"text\"");
        return t.GetString()!.Length;
    }
}
