// The token shards of one split of a corpus folder, as the manifest lists them: what the trainer opens.
// Each shard's header counts are checked against the manifest on open; the SHA-256 of every .bin and .idx
// only when asked (verify), since that reads every byte.
using System.Security.Cryptography;

namespace Duet.Formats.Tokens;

/// <summary>The token shards of one split (train, validation) of a corpus folder, opened from its manifest.</summary>
public sealed class TokenCorpus : IDisposable
{
    public string Root { get; }
    public string Split { get; }
    public TokenManifest Manifest { get; }
    /// <summary>The split's shards in manifest order.</summary>
    public IReadOnlyList<TokenShard> Shards { get; }
    public long TokenCount { get; }
    public long DocumentCount { get; }
    public int VocabSize => Manifest.VocabSize;
    public int? Bos => Manifest.Bos;
    public int? Eos => Manifest.Eos;

    private TokenCorpus(string dir, string split, TokenManifest manifest, List<TokenShard> shards)
    {
        Root = dir; Split = split; Manifest = manifest; Shards = shards;
        TokenCount = shards.Sum(s => s.TokenCount);
        DocumentCount = shards.Sum(s => s.DocumentCount);
    }

    /// <summary>Opens the shards of <paramref name="split"/> that the manifest in <paramref name="dir"/> lists; with <paramref name="verify"/>, checks every file's SHA-256 first.</summary>
    public static TokenCorpus Open(string dir, string split, bool verify = false)
    {
        var manifestPath = Path.Combine(dir, CorpusManifest.Name);
        var tokens = CorpusManifest.ReadTokens(dir)
            ?? throw new InvalidDataException($"{manifestPath}: no tokens section; run `duet data tokenize {dir} --tokenizer PATH` first");
        var infos = tokens.Shards.Where(s => s.Split == split).ToList();
        if (infos.Count == 0)
            throw new InvalidDataException($"{manifestPath}: no token shards for split '{split}' (splits: {string.Join(", ", tokens.Shards.Select(s => s.Split).Distinct())})");
        var shards = new List<TokenShard>(infos.Count);
        try
        {
            foreach (var info in infos)
            {
                string bin = Path.Combine(dir, info.Bin), idx = Path.Combine(dir, info.Idx);
                if (verify)
                {
                    CheckSha256(bin, info.BinSha256, manifestPath);
                    CheckSha256(idx, info.IdxSha256, manifestPath);
                }
                var shard = TokenShard.Open(bin, idx);
                shards.Add(shard);
                if (shard.TokenCount != info.Tokens || shard.DocumentCount != info.Documents || shard.VocabSize != tokens.VocabSize)
                    throw new InvalidDataException($"{bin}: {shard.TokenCount} tokens, {shard.DocumentCount} documents, vocabulary {shard.VocabSize}; "
                        + $"{manifestPath} records {info.Tokens}, {info.Documents}, {tokens.VocabSize}");
            }
        }
        catch
        {
            foreach (var s in shards) s.Dispose();
            throw;
        }
        return new TokenCorpus(dir, split, tokens, shards);
    }

    private static void CheckSha256(string path, string expected, string manifestPath)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: missing ({manifestPath} lists it)", path);
        string actual;
        using (var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan))
            actual = Convert.ToHexStringLower(SHA256.HashData(f));
        if (!string.Equals(actual, expected, StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException($"{path}: SHA-256 {actual}, but {manifestPath} records {expected}: the file changed after `duet data tokenize`");
    }

    public void Dispose()
    {
        foreach (var s in Shards) s.Dispose();
    }
}
