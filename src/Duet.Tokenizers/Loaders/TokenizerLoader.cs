// Picks the loader from the path: a folder (its tokenizer.json or tokenizer.model), *.json, *.model, *.gguf.
namespace Duet.Tokenizers.Loaders;

public static class TokenizerLoader
{
    public static Tokenizer Load(string path)
    {
        path = ResolveFile(path);
        var ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext == ".gguf" || IsGguf(path)) return GgufVocabulary.Load(path);
        if (ext == ".json") return TokenizerJson.Load(path);
        return SentencePieceModel.Load(path);
    }

    /// <summary>The file <see cref="Load"/> reads for <paramref name="path"/>: the path itself, or a folder's tokenizer.json or tokenizer.model.</summary>
    public static string ResolveFile(string path)
    {
        if (Directory.Exists(path))
        {
            var json = Path.Combine(path, "tokenizer.json");
            if (File.Exists(json)) return json;
            var model = Path.Combine(path, "tokenizer.model");
            if (File.Exists(model)) return model;
            throw new TokenizerFormatException($"{path}: the folder has neither tokenizer.json nor tokenizer.model");
        }
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such file", path);
        return path;
    }

    private static bool IsGguf(string path)
    {
        using var f = File.OpenRead(path);
        Span<byte> magic = stackalloc byte[4];
        return f.Read(magic) == 4 && magic.SequenceEqual("GGUF"u8);
    }
}
