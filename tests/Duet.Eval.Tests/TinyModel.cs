// The smallest LLaMA the evaluation tests run: random weights (seeded), one layer, GQA 2/1, written as an HF folder
// (float32 safetensors) and loaded back as the commands load a model.
using Duet.Model;
using Duet.Tokenizers;

namespace Duet.Eval.Tests;

internal static class TinyModel
{
    public static LlamaConfig Config(int vocab, int context) => new()
    {
        Dim = 32, Layers = 1, Heads = 2, KvHeads = 1, HeadDim = 16, RopeDim = 16, FfnDim = 64, Vocab = vocab, ContextLength = context,
        RopeStyle = Tensors.Kernels.RopeStyle.NeoX,
    };

    /// <summary>Writes the model (with <paramref name="tokenizer"/>, if given) to <paramref name="folder"/> and loads it.</summary>
    public static LlamaModel Create(string folder, int vocab, int context, ulong seed = 1, Tokenizer? tokenizer = null)
    {
        ModelPackage.WriteHfFolder(CanonicalModel.Random(Config(vocab, context), seed, tokenizer), folder, Formats.SafeTensors.SafeTensorsDType.F32);
        return LlamaModel.Load(folder);
    }
}
