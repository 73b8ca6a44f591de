// TorchSharp-cpu (libtorch 2.10) peer of `duet bench-train` (issue 21, acceptance 4): whole training steps of the same
// LLaMA shape on the CPU, float32, the same batch and sequence, random tokens, cross-entropy, backward, global-norm
// clipping at 1.0 and AdamW (lr 1e-3, betas 0.9/0.95, eps 1e-8, weight decay 0.1 on the 2-D weights but the
// embedding), as bench/train_pytorch.py does on Debian's torch 1.13 and as Duet's trainer does.
//
// The model is HF LlamaForCausalLM's: RMSNorm (eps 1e-5), rotate-half RoPE (theta 10000), causal grouped-query
// attention, SwiGLU, tied or untied head. Attention is libtorch's fused scaled_dot_product_attention (is_causal, the
// key/value heads repeated to the query heads), the fastest CPU path libtorch offers (its flash-attention CPU kernel).
//
//   dotnet run -c Release --project bench/Duet.Bench.TorchSharp -- --preset duet-tiny --vocab 8000 --batch 16 --seq 256 --threads 2
//
// Prints one JSON line: tokens/s (median of the timed steps after warm-up), ms per step, threads, shape, the last loss.
using System.Diagnostics;
using System.Text.Json;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

var opts = new Dictionary<string, string>
{
    ["--preset"] = "15m", ["--vocab"] = "32000", ["--batch"] = "8", ["--seq"] = "256", ["--threads"] = "2", ["--steps"] = "10", ["--warmup"] = "2",
};
for (int i = 0; i < args.Length; i++)
{
    if (args[i] is "-h" or "--help")
    {
        Console.WriteLine("Duet.Bench.TorchSharp [--preset 15m|duet-tiny] [--vocab N] [--batch B] [--seq T] [--threads N] [--steps N] [--warmup N]");
        return 0;
    }
    if (!opts.ContainsKey(args[i]) || i + 1 >= args.Length) { Console.Error.WriteLine($"unknown option or missing value: {args[i]}"); return 2; }
    opts[args[i]] = args[++i];
}
var presets = new Dictionary<string, (int Dim, int Layers, int Heads, int KvHeads, int Ffn, bool Tied)>
{
    ["15m"] = (288, 6, 6, 6, 768, true),
    ["duet-tiny"] = (256, 4, 8, 4, 704, true),
};
if (!presets.TryGetValue(opts["--preset"], out var p)) { Console.Error.WriteLine($"unknown preset {opts["--preset"]}"); return 2; }
int vocab = int.Parse(opts["--vocab"]), batch = int.Parse(opts["--batch"]), seq = int.Parse(opts["--seq"]);
int threads = int.Parse(opts["--threads"]), steps = int.Parse(opts["--steps"]), warmup = int.Parse(opts["--warmup"]);

torch.set_num_threads(threads);
torch.set_num_interop_threads(1);
torch.manual_seed(0);
var model = new Llama(vocab, p.Dim, p.Layers, p.Heads, p.KvHeads, p.Ffn, p.Tied, seq);
var named = model.named_parameters().ToList();
var decay = named.Where(x => x.parameter.dim() == 2 && !x.name.StartsWith("emb", StringComparison.Ordinal)).Select(x => x.parameter).ToList();
var rest = named.Where(x => !(x.parameter.dim() == 2 && !x.name.StartsWith("emb", StringComparison.Ordinal))).Select(x => x.parameter).ToList();
var all = named.Select(x => x.parameter).ToList();
var opt = torch.optim.AdamW(
    [new AdamW.ParamGroup(decay, new AdamW.Options { weight_decay = 0.1 }), new AdamW.ParamGroup(rest, new AdamW.Options { weight_decay = 0.0 })],
    lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8);
var gen = new torch.Generator(1);
var times = new List<double>();
double lastLoss = 0;
for (int s = 0; s < warmup + steps; s++)
{
    using var scope = torch.NewDisposeScope();
    var ids = torch.randint(0, vocab, [batch, seq + 1], generator: gen);
    var sw = Stopwatch.StartNew();
    var logits = model.forward(ids[.., ..^1]);
    var loss = nn.functional.cross_entropy(logits.reshape(-1, vocab), ids[.., 1..].reshape(-1));
    opt.zero_grad();
    loss.backward();
    nn.utils.clip_grad_norm_(all, 1.0);
    opt.step();
    lastLoss = loss.item<float>();
    if (s >= warmup) times.Add(sw.Elapsed.TotalSeconds);
}
times.Sort();
double median = times[times.Count / 2];
Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
{
    ["peer"] = "torchsharp", ["libtorch"] = torch.__version__, ["preset"] = opts["--preset"], ["vocab"] = vocab, ["batch"] = batch, ["seq"] = seq,
    ["threads"] = threads, ["step_ms"] = Math.Round(median * 1e3, 2), ["tokens_per_s"] = Math.Round(batch * seq / median, 1),
    ["params"] = all.Sum(x => x.numel()), ["loss"] = Math.Round(lastLoss, 4),
}));
return 0;

/// <summary>HF LlamaForCausalLM in float32, as bench/train_pytorch.py, with fused SDPA attention.</summary>
internal sealed class Llama : nn.Module<Tensor, Tensor>
{
    private readonly int _heads, _kvHeads, _headDim;
    private readonly Embedding emb;
    private readonly ModuleList<Block> layers = new();
    private readonly Parameter norm;
    private readonly Linear? head;
    private readonly Tensor cos, sin;

    public Llama(int vocab, int dim, int nLayers, int heads, int kvHeads, int ffn, bool tied, int seq) : base("llama")
    {
        _heads = heads; _kvHeads = kvHeads; _headDim = dim / heads;
        emb = nn.Embedding(vocab, dim);
        for (int i = 0; i < nLayers; i++) layers.Add(new Block(dim, heads, kvHeads, _headDim, ffn));
        norm = nn.Parameter(torch.ones(dim));
        head = tied ? null : nn.Linear(dim, vocab, hasBias: false);
        var inv = 1.0f / torch.pow(10000.0f, torch.arange(0, _headDim, 2, dtype: float32) / _headDim);
        var ang = torch.outer(torch.arange(seq, dtype: float32), inv);
        cos = torch.cat([ang.cos(), ang.cos()], -1);
        sin = torch.cat([ang.sin(), ang.sin()], -1);
        RegisterComponents();
        using (torch.no_grad())
            foreach (var (_, q) in named_parameters())
                if (q.dim() == 2) nn.init.normal_(q, 0, 0.02);
    }

    private static Tensor Rms(Tensor x, Tensor w) => x * torch.rsqrt(x.pow(2).mean([-1], keepdim: true) + 1e-5) * w;

    private Tensor Rope(Tensor x)
    {
        long half = x.shape[^1] / 2;
        var rot = torch.cat([-x[TensorIndex.Ellipsis, TensorIndex.Slice(half)], x[TensorIndex.Ellipsis, TensorIndex.Slice(0, half)]], -1);
        return x * cos + rot * sin;
    }

    public override Tensor forward(Tensor ids)
    {
        long b = ids.shape[0], t = ids.shape[1];
        var x = emb.forward(ids);
        foreach (var l in layers)
        {
            var n = Rms(x, l.n1);
            var q = Rope(l.q.forward(n).view(b, t, _heads, _headDim).transpose(1, 2));
            var k = Rope(l.k.forward(n).view(b, t, _kvHeads, _headDim).transpose(1, 2));
            var v = l.v.forward(n).view(b, t, _kvHeads, _headDim).transpose(1, 2);
            int rep = _heads / _kvHeads;
            if (rep > 1) { k = k.repeat_interleave(rep, 1); v = v.repeat_interleave(rep, 1); }
            var a = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true).transpose(1, 2).reshape(b, t, -1);
            x = x + l.o.forward(a);
            n = Rms(x, l.n2);
            x = x + l.d.forward(nn.functional.silu(l.g.forward(n)) * l.u.forward(n));
        }
        x = Rms(x, norm);
        return head is null ? x.matmul(emb.weight!.T) : head.forward(x);
    }
}

internal sealed class Block : nn.Module
{
    public readonly Parameter n1, n2;
    public readonly Linear q, k, v, o, g, u, d;

    public Block(int dim, int heads, int kvHeads, int headDim, int ffn) : base("block")
    {
        n1 = nn.Parameter(torch.ones(dim)); n2 = nn.Parameter(torch.ones(dim));
        q = nn.Linear(dim, heads * headDim, hasBias: false); k = nn.Linear(dim, kvHeads * headDim, hasBias: false);
        v = nn.Linear(dim, kvHeads * headDim, hasBias: false); o = nn.Linear(heads * headDim, dim, hasBias: false);
        g = nn.Linear(dim, ffn, hasBias: false); u = nn.Linear(dim, ffn, hasBias: false); d = nn.Linear(ffn, dim, hasBias: false);
        RegisterComponents();
    }
}
