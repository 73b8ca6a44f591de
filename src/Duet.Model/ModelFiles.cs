// The entry points model files had before ModelPackage, kept as one-line forwards so that code written against
// them (the inference and server tests, work on other branches) still builds. New code calls ModelPackage (open,
// save, types) and CanonicalModel (random weights, weights back to float32); this file goes once no caller is left.
using Duet.Formats.SafeTensors;
using Duet.Tensors;
using Duet.Tokenizers;

namespace Duet.Model;

/// <summary>Forwards to <see cref="ModelPackage"/> and <see cref="CanonicalModel"/>.</summary>
public static class ModelFiles
{
    /// <inheritdoc cref="CanonicalModel.Random"/>
    public static CanonicalModel Random(LlamaConfig c, ulong seed, Tokenizer? tokenizer = null, float std = 0.02f) => CanonicalModel.Random(c, seed, tokenizer, std);

    /// <inheritdoc cref="CanonicalModel.FromWeights"/>
    public static CanonicalModel ToCanonical(LlamaWeights w, Tokenizer? tokenizer) => CanonicalModel.FromWeights(w, tokenizer);

    /// <inheritdoc cref="ModelPackage.WriteGguf"/>
    public static void WriteGguf(CanonicalModel m, string path, GgmlType type, string name = "duet") => ModelPackage.WriteGguf(m, path, type, name);

    /// <inheritdoc cref="ModelPackage.WriteHfFolder"/>
    public static void WriteHfFolder(CanonicalModel m, string folder, SafeTensorsDType dtype) => ModelPackage.WriteHfFolder(m, folder, dtype);

    /// <inheritdoc cref="ModelPackage.PlaceholderTokenizer"/>
    public static Tokenizer PlaceholderTokenizer(int size) => ModelPackage.PlaceholderTokenizer(size);
}
