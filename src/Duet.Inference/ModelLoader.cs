// Loads a model and the tokenizer that goes with it: the GGUF's own vocabulary, or tokenizer.json /
// tokenizer.model beside an HF folder's config.json.
using Duet.Model;
using Duet.Tokenizers;

namespace Duet.Inference;

public static class ModelLoader
{
    public static Tokenizer? TryTokenizer(string modelPath)
    {
        if (Directory.Exists(modelPath))
            return File.Exists(Path.Combine(modelPath, "tokenizer.json")) || File.Exists(Path.Combine(modelPath, "tokenizer.model")) ? Tokenizer.Load(modelPath) : null;
        try { return Tokenizer.Load(modelPath); }
        catch (TokenizerFormatException) { return null; }
    }

    /// <summary>The model at <paramref name="path"/> (.gguf file or HF folder) and its tokenizer; throws InvalidDataException when they do not fit.</summary>
    public static (LlamaModel Model, Tokenizer Tokenizer) Load(string path)
    {
        var model = LlamaModel.Load(path);
        try
        {
            var tok = TryTokenizer(path) ?? throw new InvalidDataException($"{path}: no tokenizer in the model (GGUF vocabulary or tokenizer.json/tokenizer.model beside it)");
            if (tok.VocabSize > model.Config.Vocab)
                throw new InvalidDataException($"{path}: the tokenizer has {tok.VocabSize} tokens but the model only {model.Config.Vocab}");
            return (model, tok);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
