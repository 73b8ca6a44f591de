// Tensor names in one place: llama.cpp's GGUF names (LLM_TN) and HF LlamaForCausalLM names, as a table.
namespace Duet.Model;

public enum LayerTensor { AttnNorm, Q, K, V, O, FfnNorm, Gate, Up, Down }

public static class WeightNames
{
    public const string GgufEmbedding = "token_embd.weight", GgufOutputNorm = "output_norm.weight", GgufOutput = "output.weight", GgufRopeFreqs = "rope_freqs.weight";
    public const string HfEmbedding = "model.embed_tokens.weight", HfOutputNorm = "model.norm.weight", HfOutput = "lm_head.weight";

    public static string Gguf(int layer, LayerTensor t) => $"blk.{layer}." + t switch
    {
        LayerTensor.AttnNorm => "attn_norm", LayerTensor.Q => "attn_q", LayerTensor.K => "attn_k", LayerTensor.V => "attn_v",
        LayerTensor.O => "attn_output", LayerTensor.FfnNorm => "ffn_norm", LayerTensor.Gate => "ffn_gate", LayerTensor.Up => "ffn_up",
        _ => "ffn_down",
    } + ".weight";

    public static string Hf(int layer, LayerTensor t) => $"model.layers.{layer}." + t switch
    {
        LayerTensor.AttnNorm => "input_layernorm", LayerTensor.Q => "self_attn.q_proj", LayerTensor.K => "self_attn.k_proj",
        LayerTensor.V => "self_attn.v_proj", LayerTensor.O => "self_attn.o_proj", LayerTensor.FfnNorm => "post_attention_layernorm",
        LayerTensor.Gate => "mlp.gate_proj", LayerTensor.Up => "mlp.up_proj", _ => "mlp.down_proj",
    } + ".weight";

    /// <summary>Shape [rows, cols] (row-major: rows are output features) of each tensor.</summary>
    public static (int Rows, int Cols) Shape(LlamaConfig c, LayerTensor t) => t switch
    {
        LayerTensor.AttnNorm or LayerTensor.FfnNorm => (1, c.Dim),
        LayerTensor.Q => (c.QDim, c.Dim),
        LayerTensor.K or LayerTensor.V => (c.KvDim, c.Dim),
        LayerTensor.O => (c.Dim, c.QDim),
        LayerTensor.Gate or LayerTensor.Up => (c.FfnDim, c.Dim),
        _ => (c.Dim, c.FfnDim),
    };

    /// <summary>
    /// HF -> GGUF row order of a Q or K projection: llama.cpp's converter permutes rows so that RoPE on
    /// adjacent pairs (GGUF) equals HF's rotate_half on (i, i + d/2): GGUF row 2i + s of a head is HF row s*d/2 + i.
    /// </summary>
    public static int HfRowForGgufRow(int ggufRow, int headDim)
    {
        int head = ggufRow / headDim, r = ggufRow % headDim;
        return head * headDim + (r % 2) * (headDim / 2) + r / 2;
    }
}
