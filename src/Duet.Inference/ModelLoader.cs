// Loads a model and the tokenizer that goes with it, checked to fit, for running it: what the CLI, the server and
// DuetChatClient call. Opening both is ModelPackage's (the GGUF's own vocabulary, or tokenizer.json /
// tokenizer.model beside an HF folder's config.json); this is the inference side's one-line entry into it.
using Duet.Model;
using Duet.Tokenizers;

namespace Duet.Inference;

/// <summary>Opens a model with its tokenizer for inference.</summary>
public static class ModelLoader
{
    /// <summary>The model at <paramref name="path"/> (.gguf file or HF folder) and its tokenizer; throws InvalidDataException when they do not fit.</summary>
    public static (LlamaModel Model, Tokenizer Tokenizer) Load(string path)
    {
        var package = ModelPackage.Open(path);
        try { return (package.Model, package.RequireTokenizer()); }
        catch
        {
            package.Dispose();
            throw;
        }
    }
}
