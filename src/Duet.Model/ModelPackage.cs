// One model as files: weights, tokenizer and metadata together, as a GGUF file (llama.cpp names, tokenizer.ggml.*
// vocabulary, general.name) or an HF folder (config.json, model.safetensors, tokenizer.json,
// generation_config.json). Opening maps the weights in place (LlamaWeights) and finds the tokenizer that goes with
// them: the GGUF's own vocabulary, or tokenizer.json / tokenizer.model in the folder. Saving takes a
// CanonicalModel (float32, HF names and row order); GGUF gets llama.cpp's Q/K row permutation on write.
// The CLI (init, convert, quantize, logits, export), the inference loader and the trainer's export all come
// through here, so which types each format holds, how they are named and which tokenizer a model carries are
// decided once. Not here: the forward pass (LlamaModel) and the formats' byte layouts (Duet.Formats).
using System.Text.Json;
using Duet.Formats;
using Duet.Formats.Gguf;
using Duet.Formats.SafeTensors;
using Duet.Tensors;
using Duet.Tensors.Quant;
using Duet.Tokenizers;
using Duet.Tokenizers.Decoders;
using Duet.Tokenizers.Loaders;
using Duet.Tokenizers.Models;
using Duet.Tokenizers.Normalizers;
using Duet.Tokenizers.PostProcessors;

namespace Duet.Model;

/// <summary>How a model is stored.</summary>
public enum ModelFormat
{
    /// <summary>One .gguf file: llama.cpp tensor names and metadata keys, the tokenizer embedded.</summary>
    Gguf,
    /// <summary>An HF folder: config.json, model.safetensors (or shards with an index), tokenizer.json or tokenizer.model.</summary>
    SafeTensors,
}

/// <summary>A model's weights with their tokenizer and metadata: opened from a GGUF file or an HF folder, or saved as one.</summary>
public sealed class ModelPackage : IDisposable
{
    private ModelPackage(string path, ModelFormat format, LlamaModel model, Tokenizer? tokenizer, IReadOnlyDictionary<string, string> provenance)
    {
        Path = path; Format = format; Model = model; Tokenizer = tokenizer; Provenance = provenance;
    }

    /// <summary>GGUF keys of <see cref="CanonicalModel.Provenance"/>: this prefix and the name.</summary>
    public const string ProvenancePrefix = "duet.provenance.";
    /// <summary>The config.json object of <see cref="CanonicalModel.Provenance"/> in an HF folder.</summary>
    public const string ProvenanceJsonKey = "duet_provenance";

    /// <summary>What made the weights, as they record it (empty for a model from elsewhere).</summary>
    public IReadOnlyDictionary<string, string> Provenance { get; }

    /// <summary>The .gguf file or HF folder the package was opened from.</summary>
    public string Path { get; }
    /// <summary>GGUF file or HF folder.</summary>
    public ModelFormat Format { get; }
    /// <summary>The model, its weights mapped from <see cref="Path"/>; disposing the package disposes it.</summary>
    public LlamaModel Model { get; }
    /// <summary>The model's shape and metadata, as read from the GGUF keys or config.json.</summary>
    public LlamaConfig Config => Model.Config;
    /// <summary>The tokenizer that came with the weights, or null when there is none (or it was not asked for).</summary>
    public Tokenizer? Tokenizer { get; }

    /// <summary>Disposes <see cref="Model"/>, unmapping the weights.</summary>
    public void Dispose() => Model.Dispose();

    // ---- opening ----------------------------------------------------------------------------------

    /// <summary>
    /// Opens <paramref name="path"/>, a .gguf file or an HF folder. With <paramref name="loadTokenizer"/>, also its
    /// tokenizer: the GGUF's vocabulary (none when the file has no or a broken tokenizer.ggml.* section), or the
    /// folder's tokenizer.json / tokenizer.model (none when neither exists; a broken one throws).
    /// </summary>
    public static ModelPackage Open(string path, bool loadTokenizer = true)
    {
        if (Directory.Exists(path))
        {
            var hf = new LlamaModel(LlamaWeights.FromHfFolder(path));
            try { return new ModelPackage(path, ModelFormat.SafeTensors, hf, loadTokenizer ? FolderTokenizer(path) : null, FolderProvenance(path)); }
            catch { hf.Dispose(); throw; }
        }
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such file or folder", path);
        var gguf = GgufFile.Open(path);
        LlamaModel model;
        try { model = new LlamaModel(LlamaWeights.FromGguf(gguf)); }
        catch { gguf.Dispose(); throw; }
        try { return new ModelPackage(path, ModelFormat.Gguf, model, loadTokenizer ? GgufTokenizer(gguf.Metadata) : null, GgufProvenance(gguf.Metadata)); }
        catch { model.Dispose(); throw; } // the weights own the file now
    }

    internal static Dictionary<string, string> GgufProvenance(GgufMetadata metadata)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var key in metadata.Keys)
            if (key.StartsWith(ProvenancePrefix, StringComparison.Ordinal) && metadata.GetString(key) is { } v) d[key[ProvenancePrefix.Length..]] = v;
        return d;
    }

    private static Dictionary<string, string> FolderProvenance(string folder)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        var path = System.IO.Path.Combine(folder, "config.json");
        if (!File.Exists(path)) return d;
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty(ProvenanceJsonKey, out var p) && p.ValueKind == JsonValueKind.Object)
            foreach (var e in p.EnumerateObject())
                if (e.Value.ValueKind == JsonValueKind.String) d[e.Name] = e.Value.GetString()!;
        return d;
    }

    private static Tokenizer? FolderTokenizer(string folder) =>
        File.Exists(System.IO.Path.Combine(folder, "tokenizer.json")) || File.Exists(System.IO.Path.Combine(folder, "tokenizer.model")) ? Tokenizer.Load(folder) : null;

    private static Tokenizer? GgufTokenizer(GgufMetadata metadata)
    {
        try { return GgufVocabulary.Load(metadata); }
        catch (TokenizerFormatException) { return null; }
        catch (GgufFormatException) { return null; }
    }

    /// <summary>The tokenizer, checked to fit the model; throws <see cref="InvalidDataException"/> when there is none or it has more tokens than the model.</summary>
    public Tokenizer RequireTokenizer()
    {
        var tok = Tokenizer ?? throw new InvalidDataException($"{Path}: no tokenizer in the model (GGUF vocabulary or tokenizer.json/tokenizer.model beside it)");
        if (tok.VocabSize > Config.Vocab)
            throw new InvalidDataException($"{Path}: the tokenizer has {tok.VocabSize} tokens but the model only {Config.Vocab}");
        return tok;
    }

    /// <summary>The weights as float32 in HF form with the tokenizer, ready to be saved in another format or type.</summary>
    public CanonicalModel ToCanonical()
    {
        var m = CanonicalModel.FromWeights(Model.Weights, Tokenizer);
        return new CanonicalModel { Config = m.Config, Tensors = m.Tensors, Tokenizer = m.Tokenizer, Provenance = Provenance };
    }

    // ---- types ------------------------------------------------------------------------------------

    // The types Duet writes a model's matrices in, with llama_ftype for general.file_type (llama.h: ALL_F32 = 0,
    // MOSTLY_F16 = 1, MOSTLY_Q4_0 = 2, MOSTLY_Q4_1 = 3, MOSTLY_Q8_0 = 7, MOSTLY_Q5_0 = 8, MOSTLY_Q5_1 = 9,
    // MOSTLY_Q4_K_S = 14, MOSTLY_Q5_K_S = 16, MOSTLY_Q6_K = 18, MOSTLY_BF16 = 32).
    private static readonly (GgmlType Type, uint FileType)[] s_written =
    [
        (GgmlType.F32, 0), (GgmlType.F16, 1), (GgmlType.BF16, 32), (GgmlType.Q8_0, 7), (GgmlType.Q4_0, 2), (GgmlType.Q4_1, 3),
        (GgmlType.Q5_0, 8), (GgmlType.Q5_1, 9), (GgmlType.Q4_K, 14), (GgmlType.Q5_K, 16), (GgmlType.Q6_K, 18),
    ];

    /// <summary>The types a model's matrices can be saved in: all of them in GGUF, F32, F16 and BF16 in safetensors.</summary>
    public static IReadOnlyList<GgmlType> WrittenTypes { get; } = s_written.Select(w => w.Type).ToArray();

    /// <summary>
    /// The <see cref="GgmlType"/> named <paramref name="name"/> (any case: "q8_0", "Q8_0"), if it is one Duet writes;
    /// otherwise an <see cref="ArgumentException"/> that lists the names it takes.
    /// </summary>
    public static GgmlType ParseType(string name)
    {
        // Enum.TryParse also takes numbers ("8") and comma lists ("F32,F16", OR-ed); a type is named by its name alone.
        bool isName = name.Length > 0 && char.IsAsciiLetter(name[0]) && name.All(ch => char.IsAsciiLetterOrDigit(ch) || ch == '_');
        if (!isName || !Enum.TryParse<GgmlType>(name, ignoreCase: true, out var type) || !Enum.IsDefined(type))
            throw new ArgumentException($"type '{name}' is not a ggml type; Duet writes {string.Join(", ", WrittenTypes)}");
        if (!WrittenTypes.Contains(type))
            throw new ArgumentException($"type '{name}' is a ggml type Duet does not write; it writes {string.Join(", ", WrittenTypes)}");
        return type;
    }

    private static uint FileType(GgmlType t)
    {
        foreach (var w in s_written)
            if (w.Type == t) return w.FileType;
        throw new NotSupportedException($"writing {t} models is not supported yet");
    }

    // ---- saving -----------------------------------------------------------------------------------

    /// <summary>
    /// Saves <paramref name="model"/> at <paramref name="path"/>: a .gguf file whose matrices are <paramref name="type"/>
    /// and whose general.name is <paramref name="name"/>, or an HF folder in the safetensors dtype of <paramref name="type"/>
    /// (F32, F16 or BF16; others throw <see cref="ArgumentException"/> before anything is written).
    /// </summary>
    public static void Save(CanonicalModel model, string path, ModelFormat format, GgmlType type, string name)
    {
        switch (format)
        {
            case ModelFormat.Gguf: WriteGguf(model, path, type, name); break;
            case ModelFormat.SafeTensors: WriteHfFolder(model, path, SafeTensorsTypes.FromGgml(type)); break;
            default: throw new ArgumentOutOfRangeException(nameof(format), format, "GGUF or safetensors");
        }
    }

    /// <summary>Writes GGUF with llama.cpp names; 2-D weights in <paramref name="type"/> (norms stay F32; rows that are not whole blocks fall back to F16).</summary>
    public static void WriteGguf(CanonicalModel m, string path, GgmlType type, string name = "duet")
    {
        var c = m.Config;
        var tok = m.Tokenizer ?? PlaceholderTokenizer(c.Vocab);
        if (tok.VocabSize != c.Vocab)
            throw new ArgumentException($"the tokenizer has {tok.VocabSize} tokens but the model's vocabulary is {c.Vocab}");
        var w = new GgufWriter(c.ToGgufMetadata(name));
        w.Add(GgufKeys.GeneralFileType, GgufValue.Of(FileType(type)));
        w.Add(GgufKeys.GeneralQuantizationVersion, GgufValue.Of(2u));
        w.AddMetadata(GgufVocabulary.ToMetadata(tok));
        foreach (var (key, value) in m.Provenance.OrderBy(p => p.Key, StringComparer.Ordinal)) w.Add(ProvenancePrefix + key, GgufValue.Of(value));
        void Matrix(string gguf, string hf, int rows, int cols, bool permute)
        {
            var src = m.Tensors[hf];
            var t = cols % GgmlTypeInfo.BlockSize(type) == 0 ? type : GgmlType.F16;
            long rowBytes = GgmlTypeInfo.RowSize(t, cols);
            var bytes = new byte[rowBytes * rows];
            for (int r = 0; r < rows; r++)
            {
                int hr = permute ? WeightNames.HfRowForGgufRow(r, c.HeadDim) : r;
                Quantizer.QuantizeRow(t, src.AsSpan(hr * cols, cols), bytes.AsSpan((int)(r * rowBytes), (int)rowBytes));
            }
            w.AddTensor(gguf, t, [cols, rows], bytes);
        }
        void Vector(string gguf, string hf)
        {
            var src = m.Tensors[hf];
            var bytes = new byte[src.Length * 4];
            Buffer.BlockCopy(src, 0, bytes, 0, bytes.Length);
            w.AddTensor(gguf, GgmlType.F32, [src.Length], bytes);
        }
        Matrix(WeightNames.GgufEmbedding, WeightNames.HfEmbedding, c.Vocab, c.Dim, false);
        for (int l = 0; l < c.Layers; l++)
        {
            Vector(WeightNames.Gguf(l, LayerTensor.AttnNorm), WeightNames.Hf(l, LayerTensor.AttnNorm));
            foreach (var lt in new[] { LayerTensor.Q, LayerTensor.K, LayerTensor.V, LayerTensor.O })
            {
                var (r, k) = WeightNames.Shape(c, lt);
                Matrix(WeightNames.Gguf(l, lt), WeightNames.Hf(l, lt), r, k, lt is LayerTensor.Q or LayerTensor.K);
            }
            Vector(WeightNames.Gguf(l, LayerTensor.FfnNorm), WeightNames.Hf(l, LayerTensor.FfnNorm));
            foreach (var lt in new[] { LayerTensor.Gate, LayerTensor.Up, LayerTensor.Down })
            {
                var (r, k) = WeightNames.Shape(c, lt);
                Matrix(WeightNames.Gguf(l, lt), WeightNames.Hf(l, lt), r, k, false);
            }
        }
        Vector(WeightNames.GgufOutputNorm, WeightNames.HfOutputNorm);
        if (!c.TiedEmbeddings) Matrix(WeightNames.GgufOutput, WeightNames.HfOutput, c.Vocab, c.Dim, false);
        w.WriteFile(path);
    }

    /// <summary>Writes model.safetensors + config.json + generation_config.json (+ tokenizer.json when the model has a tokenizer) into a folder.</summary>
    public static void WriteHfFolder(CanonicalModel m, string folder, SafeTensorsDType dtype)
    {
        if (!SafeTensorsTypes.TryToGgml(dtype, out var type)) throw new NotSupportedException($"writing {dtype} safetensors is not supported");
        Directory.CreateDirectory(folder);
        var w = new SafeTensorsWriter();
        foreach (var (name, rows, cols) in m.Layout())
        {
            var src = m.Tensors[name];
            long[] shape = rows == 1 ? [cols] : [rows, cols];
            var bytes = new byte[GgmlTypeInfo.RowSize(type, src.Length)];
            Quantizer.QuantizeRow(type, src, bytes); // F32, F16, BF16: one element per block, the whole tensor as one row
            w.Add(name, dtype, shape, bytes);
        }
        w.WriteFile(System.IO.Path.Combine(folder, "model.safetensors"));
        var tok = m.Tokenizer;
        var hf = m.Config.ToHf(tok is { BosId: >= 0 } ? tok.BosId : null, tok is { EosId: >= 0 } ? [tok.EosId] : null)
            with { TorchDtype = SafeTensorsTypes.TorchDtype(dtype) };
        var configJson = hf.ToJson();
        if (m.Provenance.Count > 0)
        {
            var p = new System.Text.Json.Nodes.JsonObject();
            foreach (var (key, value) in m.Provenance.OrderBy(p => p.Key, StringComparer.Ordinal)) p[key] = value;
            configJson[ProvenanceJsonKey] = p;
        }
        WriteJson(System.IO.Path.Combine(folder, "config.json"), configJson);
        var gen = new System.Text.Json.Nodes.JsonObject { ["do_sample"] = true, ["temperature"] = 0.8, ["top_p"] = 0.9 };
        if (hf.BosTokenId is int b) gen["bos_token_id"] = b;
        if (hf.EosTokenIds.Length > 0) gen["eos_token_id"] = hf.EosTokenIds[0];
        WriteJson(System.IO.Path.Combine(folder, "generation_config.json"), gen);
        if (tok is not null) TokenizerJsonWriter.Save(tok, System.IO.Path.Combine(folder, "tokenizer.json"));
    }

    private static void WriteJson(string path, System.Text.Json.Nodes.JsonNode json) =>
        AtomicFile.Write(path, s => { using var jw = new Utf8JsonWriter(s, new JsonWriterOptions { Indented = true }); json.WriteTo(jw); });

    /// <summary>
    /// A SentencePiece-style vocabulary of exactly <paramref name="size"/> tokens for models made without a
    /// tokenizer (random test models): control tokens, the 256 byte tokens when they fit, then filler pieces.
    /// </summary>
    public static Tokenizer PlaceholderTokenizer(int size)
    {
        var pieces = new List<string> { "<unk>", "<s>", "</s>" };
        var types = new List<TokenType> { TokenType.Unknown, TokenType.Control, TokenType.Control };
        if (size >= 3 + 256 + 1)
            for (int b = 0; b < 256; b++) { pieces.Add($"<0x{b:X2}>"); types.Add(TokenType.Byte); }
        pieces.Add("\u2581"); types.Add(TokenType.Normal);
        for (int i = 0; pieces.Count < size; i++) { pieces.Add("\u2581t" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)); types.Add(TokenType.Normal); }
        pieces = pieces.Take(size).ToList();
        types = types.Take(size).ToList();
        var scores = Enumerable.Range(0, size).Select(i => -(float)i).ToArray();
        var model = BpeModel.FromScores(pieces.ToArray(), types.ToArray(), scores, 0, byteFallback: types.Contains(TokenType.Byte));
        return new Tokenizer(model, new SentencePieceNormalizer(true, false), null, new TemplatePostProcessor([1], []),
            new AddedVocabulary([new AddedToken(1, "<s>", true), new AddedToken(2, "</s>", true)]), DecoderKind.SentencePiece, TokenizerSource.Trained, false)
        { BosId = 1, EosId = 2 };
    }
}
