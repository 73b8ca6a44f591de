// ModelPackage: a model saved as GGUF or as an HF folder opens again with the same weights (float32 exactly, the
// Q/K permutation undone) and the tokenizer that went with it; --type names parse through GgmlType with an error
// that lists what Duet writes; safetensors takes only F32, F16 and BF16, refused before anything is written.
using Duet.Formats.SafeTensors;
using Duet.Tensors;
using Duet.Tokenizers;

namespace Duet.Model.Tests;

public sealed class ModelPackageTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("duet-package-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static LlamaConfig Tiny(bool tied = false) => new()
    {
        Dim = 32, Layers = 2, Heads = 4, KvHeads = 2, HeadDim = 8, RopeDim = 8, FfnDim = 64, Vocab = 300, ContextLength = 64,
        TiedEmbeddings = tied, RopeStyle = Tensors.Kernels.RopeStyle.NeoX,
    };

    [Theory]
    [InlineData(ModelFormat.Gguf, false)]
    [InlineData(ModelFormat.Gguf, true)]
    [InlineData(ModelFormat.SafeTensors, false)]
    [InlineData(ModelFormat.SafeTensors, true)]
    public void SaveThenOpen_F32_GivesTheSameTensorsAndTokenizer(ModelFormat format, bool tied)
    {
        var tok = ModelPackage.PlaceholderTokenizer(300);
        var model = CanonicalModel.Random(Tiny(tied), 5, tok, std: 0.3f);
        var path = Path.Combine(_dir, format == ModelFormat.Gguf ? "m.gguf" : "m");
        ModelPackage.Save(model, path, format, GgmlType.F32, "pkg");
        using var package = ModelPackage.Open(path);
        Assert.Equal((path, format, tied), (package.Path, package.Format, package.Config.TiedEmbeddings));
        Assert.Same(package.Tokenizer, package.RequireTokenizer());
        Assert.Equal(tok.Encode("t1 t2 t3"), package.Tokenizer!.Encode("t1 t2 t3"));
        var back = package.ToCanonical();
        Assert.Equal(model.Layout(), back.Layout());
        foreach (var (name, _, _) in model.Layout()) Assert.Equal(model.Tensors[name], back.Tensors[name]);
        if (format == ModelFormat.Gguf) Assert.Equal("pkg", package.Config.Name);
    }

    [Fact]
    public void Open_WithoutTokenizer_HasNone_AndRequireTokenizerSaysWhat()
    {
        var folder = Path.Combine(_dir, "no-tokenizer");
        ModelPackage.Save(CanonicalModel.Random(Tiny(), 1), folder, ModelFormat.SafeTensors, GgmlType.F16, "x");
        Assert.False(File.Exists(Path.Combine(folder, "tokenizer.json")));
        using (var package = ModelPackage.Open(folder))
        {
            Assert.Null(package.Tokenizer);
            Assert.Contains("no tokenizer in the model", Assert.Throws<InvalidDataException>(() => package.RequireTokenizer()).Message, StringComparison.Ordinal);
        }
        // A GGUF always carries a vocabulary (a placeholder when the model had none); not asked for, it is not read.
        var gguf = Path.Combine(_dir, "placeholder.gguf");
        ModelPackage.Save(CanonicalModel.Random(Tiny(), 1), gguf, ModelFormat.Gguf, GgmlType.Q8_0, "x");
        using (var package = ModelPackage.Open(gguf, loadTokenizer: false)) Assert.Null(package.Tokenizer);
        using (var package = ModelPackage.Open(gguf)) Assert.Equal(300, package.RequireTokenizer().VocabSize);
        Assert.Throws<FileNotFoundException>(() => ModelPackage.Open(Path.Combine(_dir, "missing.gguf")));
    }

    [Fact]
    public void Open_TokenizerLargerThanTheModel_RequireTokenizerThrows()
    {
        var folder = Path.Combine(_dir, "too-many-tokens");
        ModelPackage.Save(CanonicalModel.Random(Tiny(), 2), folder, ModelFormat.SafeTensors, GgmlType.BF16, "x");
        Tokenizers.Loaders.TokenizerJsonWriter.Save(ModelPackage.PlaceholderTokenizer(400), Path.Combine(folder, "tokenizer.json"));
        using var package = ModelPackage.Open(folder);
        Assert.Equal(400, package.Tokenizer!.VocabSize);
        Assert.Contains("400 tokens but the model only 300", Assert.Throws<InvalidDataException>(() => package.RequireTokenizer()).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ParseType_EveryWrittenName_InAnyCase()
    {
        foreach (var t in ModelPackage.WrittenTypes)
        {
            Assert.Equal(t, ModelPackage.ParseType(t.ToString()));
            Assert.Equal(t, ModelPackage.ParseType(t.ToString().ToLowerInvariant()));
        }
        Assert.Equal([GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1,
            GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K], ModelPackage.WrittenTypes);
    }

    [Theory]
    [InlineData("foo", "is not a ggml type")]
    [InlineData("8", "is not a ggml type")]         // Enum.TryParse would take the number as Q8_0
    [InlineData("F32,F16", "is not a ggml type")]   // and a comma list as F16
    [InlineData(" Q8_0", "is not a ggml type")]
    [InlineData("", "is not a ggml type")]
    [InlineData("Q2_K", "is a ggml type Duet does not write")]
    [InlineData("iq4_nl", "is a ggml type Duet does not write")]
    public void ParseType_NotAWrittenType_ThrowsListingTheNames(string name, string why)
    {
        var e = Assert.Throws<ArgumentException>(() => ModelPackage.ParseType(name));
        Assert.Contains($"type '{name}' {why}", e.Message, StringComparison.Ordinal);
        Assert.EndsWith("F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Save_SafeTensorsInAQuantizedType_ThrowsBeforeWritingAnything()
    {
        var folder = Path.Combine(_dir, "q8-folder");
        var e = Assert.Throws<ArgumentException>(() => ModelPackage.Save(CanonicalModel.Random(Tiny(), 3), folder, ModelFormat.SafeTensors, GgmlType.Q8_0, "x"));
        Assert.Equal("safetensors holds F32, F16 or BF16, not Q8_0", e.Message);
        Assert.False(Directory.Exists(folder));
    }

    [Theory]
    [InlineData(SafeTensorsDType.F32, "float32")]
    [InlineData(SafeTensorsDType.F16, "float16")]
    [InlineData(SafeTensorsDType.BF16, "bfloat16")]
    public void WriteHfFolder_EachDtype_WritesThatDtypeAndItsTorchName(SafeTensorsDType dtype, string torch)
    {
        var folder = Path.Combine(_dir, "dtype-" + torch);
        ModelPackage.WriteHfFolder(CanonicalModel.Random(Tiny(), 4), folder, dtype);
        using (var f = SafeTensorsFile.Open(Path.Combine(folder, "model.safetensors")))
            Assert.All(f.Tensors, t => Assert.Equal(dtype, t.DType));
        Assert.Equal(torch, HfConfig.Load(Path.Combine(folder, "config.json")).TorchDtype);
        Assert.Throws<NotSupportedException>(() => ModelPackage.WriteHfFolder(CanonicalModel.Random(Tiny(), 4), Path.Combine(_dir, "i8"), SafeTensorsDType.I8));
    }
}
