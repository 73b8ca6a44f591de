// Picks the loader from the path: a folder (its tokenizer.json or tokenizer.model), *.json, *.model, *.gguf.
namespace Duet.Tokenizers.Loaders;

public static class TokenizerLoader
{
    public static Tokenizer Load(string path)
    {
        if (Directory.Exists(path))
        {
            var json = Path.Combine(path, "tokenizer.json");
            if (File.Exists(json)) return TokenizerJson.Load(json);
            var model = Path.Combine(path, "tokenizer.model");
            if (File.Exists(model)) return SentencePieceModel.Load(model);
            throw new TokenizerFormatException($"{path}: the folder has neither tokenizer.json nor tokenizer.model");
        }
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such file", path);
        var ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext == ".gguf" || IsGguf(path)) return GgufVocabulary.Load(path);
        if (ext == ".json") return TokenizerJson.Load(path);
        return SentencePieceModel.Load(path);
    }

    private static bool IsGguf(string path)
    {
        using var f = File.OpenRead(path);
        Span<byte> magic = stackalloc byte[4];
        return f.Read(magic) == 4 && magic.SequenceEqual("GGUF"u8);
    }
}
