// Model files in and out. Canonical form in memory: HF tensor names and HF row order (Q/K rows as HF
// stores them), as float32. Writing GGUF applies llama.cpp's Q/K row permutation; reading GGUF back into
// canonical form undoes it, so the same model round-trips through either format.
using System.Text.Json;
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
using Duet.Formats;

namespace Duet.Model;

/// <summary>A model as float32 tensors with HF names and layouts.</summary>
public sealed class CanonicalModel
{
    public required LlamaConfig Config { get; init; }
    public required Dictionary<string, float[]> Tensors { get; init; }
    public Tokenizer? Tokenizer { get; init; }

    public IEnumerable<(string Name, int Rows, int Cols)> Layout()
    {
        var c = Config;
        yield return (WeightNames.HfEmbedding, c.Vocab, c.Dim);
        for (int l = 0; l < c.Layers; l++)
            foreach (var t in Enum.GetValues<LayerTensor>())
            {
                var (r, k) = WeightNames.Shape(c, t);
                yield return (WeightNames.Hf(l, t), r, k);
            }
        yield return (WeightNames.HfOutputNorm, 1, c.Dim);
        if (!c.TiedEmbeddings) yield return (WeightNames.HfOutput, c.Vocab, c.Dim);
    }
}

public static class ModelFiles
{
    /// <summary>Random weights, N(0, std²) for matrices and 1 for norms, from a portable seeded generator.</summary>
    public static CanonicalModel Random(LlamaConfig c, ulong seed, Tokenizer? tokenizer = null, float std = 0.02f)
    {
        var rng = new NormalRng(seed);
        var tensors = new Dictionary<string, float[]>();
        var m = new CanonicalModel { Config = c, Tensors = tensors, Tokenizer = tokenizer };
        foreach (var (name, rows, cols) in m.Layout())
        {
            var v = new float[(long)rows * cols];
            if (rows == 1) Array.Fill(v, 1f);
            else for (long i = 0; i < v.Length; i++) v[i] = std * rng.Next();
            tensors[name] = v;
        }
        return m;
    }

    /// <summary>Reads any loaded model back into canonical float32 form (dequantizing, undoing the GGUF Q/K permutation).</summary>
    public static CanonicalModel ToCanonical(LlamaWeights w, Tokenizer? tokenizer)
    {
        var c = w.Config;
        var t = new Dictionary<string, float[]>();
        float[] Dense(Tensors.Kernels.WeightMatrix m, bool permuted)
        {
            var dst = new float[(long)m.Rows * m.Cols];
            for (int r = 0; r < m.Rows; r++)
            {
                int hr = permuted ? WeightNames.HfRowForGgufRow(r, c.HeadDim) : r;
                m.DequantizeRow(r, dst.AsSpan(hr * m.Cols, m.Cols));
            }
            return dst;
        }
        bool gguf = c.RopeStyle == Tensors.Kernels.RopeStyle.Normal;
        t[WeightNames.HfEmbedding] = Dense(w.Embedding, false);
        for (int l = 0; l < c.Layers; l++)
        {
            var L = w.Layers[l];
            t[WeightNames.Hf(l, LayerTensor.AttnNorm)] = (float[])L.AttnNorm.Clone();
            t[WeightNames.Hf(l, LayerTensor.FfnNorm)] = (float[])L.FfnNorm.Clone();
            t[WeightNames.Hf(l, LayerTensor.Q)] = Dense(L.Q, gguf);
            t[WeightNames.Hf(l, LayerTensor.K)] = Dense(L.K, gguf);
            t[WeightNames.Hf(l, LayerTensor.V)] = Dense(L.V, false);
            t[WeightNames.Hf(l, LayerTensor.O)] = Dense(L.O, false);
            t[WeightNames.Hf(l, LayerTensor.Gate)] = Dense(L.Gate, false);
            t[WeightNames.Hf(l, LayerTensor.Up)] = Dense(L.Up, false);
            t[WeightNames.Hf(l, LayerTensor.Down)] = Dense(L.Down, false);
        }
        t[WeightNames.HfOutputNorm] = (float[])w.OutputNorm.Clone();
        if (!c.TiedEmbeddings) t[WeightNames.HfOutput] = Dense(w.Output, false);
        return new CanonicalModel { Config = c with { RopeStyle = Tensors.Kernels.RopeStyle.NeoX }, Tensors = t, Tokenizer = tokenizer };
    }

    /// <summary>Writes GGUF with llama.cpp names; 2-D weights in <paramref name="type"/> (norms stay F32).</summary>
    public static void WriteGguf(CanonicalModel m, string path, GgmlType type, string name = "duet")
    {
        var c = m.Config;
        var tok = m.Tokenizer ?? PlaceholderTokenizer(c.Vocab);
        if (tok.VocabSize != c.Vocab)
            throw new ArgumentException($"the tokenizer has {tok.VocabSize} tokens but the model's vocabulary is {c.Vocab}");
        var w = new GgufWriter(c.ToGgufMetadata(name));
        w.Add(GgufKeys.GeneralFileType, GgufValue.Of((uint)FileType(type)));
        w.Add(GgufKeys.GeneralQuantizationVersion, GgufValue.Of(2u));
        w.AddMetadata(GgufVocabulary.ToMetadata(tok));
        void Matrix(string gguf, string hf, int rows, int cols, bool permute)
        {
            var src = m.Tensors[hf];
            var t = Quantizable(type, cols) ? type : GgmlType.F16;
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

    private static bool Quantizable(GgmlType t, int cols) => cols % GgmlTypeInfo.BlockSize(t) == 0;

    // llama_ftype for general.file_type: ALL_F32 = 0, MOSTLY_F16 = 1, MOSTLY_Q4_0 = 2, MOSTLY_Q4_1 = 3, MOSTLY_Q8_0 = 7,
    // MOSTLY_Q5_0 = 8, MOSTLY_Q5_1 = 9, MOSTLY_Q4_K_S = 14, MOSTLY_Q5_K_S = 16, MOSTLY_Q6_K = 18, MOSTLY_BF16 = 32.
    private static int FileType(GgmlType t) => t switch
    {
        GgmlType.F32 => 0, GgmlType.F16 => 1, GgmlType.Q4_0 => 2, GgmlType.Q4_1 => 3, GgmlType.Q8_0 => 7, GgmlType.Q5_0 => 8,
        GgmlType.Q5_1 => 9, GgmlType.Q4_K => 14, GgmlType.Q5_K => 16, GgmlType.Q6_K => 18, GgmlType.BF16 => 32,
        _ => throw new NotSupportedException($"writing {t} models is not supported yet"),
    };

    /// <summary>Writes model.safetensors + config.json (+ tokenizer.json, generation_config.json) into a folder.</summary>
    public static void WriteHfFolder(CanonicalModel m, string folder, SafeTensorsDType dtype)
    {
        Directory.CreateDirectory(folder);
        var w = new SafeTensorsWriter();
        foreach (var (name, rows, cols) in m.Layout())
        {
            var src = m.Tensors[name];
            long[] shape = rows == 1 ? [cols] : [rows, cols];
            byte[] bytes;
            switch (dtype)
            {
                case SafeTensorsDType.F32:
                    bytes = new byte[src.Length * 4];
                    Buffer.BlockCopy(src, 0, bytes, 0, bytes.Length);
                    break;
                case SafeTensorsDType.F16:
                case SafeTensorsDType.BF16:
                    bytes = new byte[src.Length * 2];
                    Quantizer.QuantizeRow(dtype == SafeTensorsDType.F16 ? GgmlType.F16 : GgmlType.BF16, src, bytes);
                    break;
                default: throw new NotSupportedException($"writing {dtype} safetensors is not supported");
            }
            w.Add(name, dtype, shape, bytes);
        }
        w.WriteFile(Path.Combine(folder, "model.safetensors"));
        var tok = m.Tokenizer;
        var hf = m.Config.ToHf(tok is { BosId: >= 0 } ? tok.BosId : null, tok is { EosId: >= 0 } ? [tok.EosId] : null)
            with { TorchDtype = dtype switch { SafeTensorsDType.F16 => "float16", SafeTensorsDType.BF16 => "bfloat16", _ => "float32" } };
        AtomicFile.Write(Path.Combine(folder, "config.json"), s => { using var jw = new Utf8JsonWriter(s, new JsonWriterOptions { Indented = true }); hf.ToJson().WriteTo(jw); });
        var gen = new System.Text.Json.Nodes.JsonObject { ["do_sample"] = true, ["temperature"] = 0.8, ["top_p"] = 0.9 };
        if (hf.BosTokenId is int b) gen["bos_token_id"] = b;
        if (hf.EosTokenIds.Length > 0) gen["eos_token_id"] = hf.EosTokenIds[0];
        AtomicFile.Write(Path.Combine(folder, "generation_config.json"), s => { using var jw = new Utf8JsonWriter(s, new JsonWriterOptions { Indented = true }); gen.WriteTo(jw); });
        if (tok is not null) TokenizerJsonWriter.Save(tok, Path.Combine(folder, "tokenizer.json"));
    }

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
