// LoRA linear layers against an independent float64 PyTorch reference (tests/reference/lora_reference.py: PEFT's
// formula W x + (alpha/r) B A x, rsLoRA's alpha/sqrt(r), autograd), over F32, F16, Q8_0, Q4_0 and Q4_K bases (the
// reference dequantizes the base's bytes with ggml_quants.py): the output and the gradients of x, A and B within
// 1e-5 relative to each tensor's size; and the same bits with one thread and two.
using System.Runtime.InteropServices;
using System.Text.Json;
using Duet.Tensors;
using Duet.Tensors.Kernels;
using Duet.Tensors.Parallel;
using Duet.Tensors.Quant;
using Duet.Tests;
using Duet.Training.Lora;

namespace Duet.Training.Tests;

public sealed unsafe class LoraTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("duet-lora-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static float[] Random(Random rng, int n, float scale) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1) * scale).ToArray();

    private sealed record Run(float[] Y, float[] Dx, float[] DA, float[] DB);

    private static Run Duet(GgmlType type, byte[] w, int rows, int inDim, int outDim, int rank, float scale, float[] x, float[] a, float[] b, float[] g, WorkerPool pool,
        (float P, ulong Seed) dropout = default)
    {
        var xd = new float[rows * inDim];
        var y = new float[rows * outDim]; var u = new float[rows * rank];
        var dx = new float[rows * inDim]; var dA = new float[rank * inDim]; var dB = new float[outDim * rank];
        var du = new float[rows * rank]; var wRows = new float[LoraLinear.BlockRows * inDim];
        fixed (byte* pw = w) fixed (float* px = x, pa = a, pb = b, pg = g, py = y, pu = u, pdx = dx, pda = dA, pdb = dB, pdu = du, pwr = wRows, pxd = xd)
        {
            var m = new WeightMatrix(type, pw, outDim, inDim);
            LoraLinear.Forward(m, px, rows, pa, pb, rank, scale, pu, py, pool, dropout, pxd);
            LoraLinear.Backward(m, px, pu, pg, rows, pa, pb, rank, scale, pdx, pda, pdb, pdu, pwr, pool, dropout, pxd);
        }
        return new Run(y, dx, dA, dB);
    }

    [Theory]
    [InlineData("F32", 16, 64, 48, 4, 8f, false, 0f)]
    [InlineData("F16", 9, 64, 80, 8, 16f, false, 0f)]
    [InlineData("Q8_0", 16, 96, 130, 4, 8f, true, 0f)]     // rsLoRA; more rows than one dequantized block of 64
    [InlineData("Q4_0", 7, 128, 70, 16, 32f, false, 0f)]
    [InlineData("Q4_K", 5, 256, 33, 2, 4f, true, 0f)]
    [InlineData("Q4_0", 12, 64, 40, 4, 8f, false, 0.25f)] // LoRA dropout
    public void LoraLinear_AnyBase_MatchesPyTorchAutograd(string typeName, int rows, int inDim, int outDim, int rank, float alpha, bool rs, float dropout)
    {
        var type = Enum.Parse<GgmlType>(typeName);
        var rng = new Random(rows * 31 + inDim);
        var wf = Random(rng, outDim * inDim, 0.5f);
        long rowBytes = GgmlTypeInfo.RowSize(type, inDim);
        var w = new byte[outDim * rowBytes];
        for (int r = 0; r < outDim; r++) Quantizer.QuantizeRow(type, wf.AsSpan(r * inDim, inDim), w.AsSpan((int)(r * rowBytes), (int)rowBytes));
        var x = Random(rng, rows * inDim, 1f); var a = Random(rng, rank * inDim, 0.3f); var b = Random(rng, outDim * rank, 0.3f); var g = Random(rng, rows * outDim, 1f);
        var options = new LoraOptions { Rank = rank, Alpha = alpha, RsLora = rs };
        const ulong seed = 77;
        File.WriteAllText(Path.Combine(_dir, "spec.json"), JsonSerializer.Serialize(new { rows, @in = inDim, @out = outDim, rank, alpha, rslora = rs, type = typeName, dropout_mask = dropout > 0 }));
        if (dropout > 0)
        {
            var mask = new float[rows * inDim];
            for (int r = 0; r < rows; r++) for (int i = 0; i < inDim; i++) mask[r * inDim + i] = LoraLinear.DropoutKeep(seed, r, i, dropout);
            int dropped = mask.Count(v => v == 0);
            Assert.InRange(dropped, mask.Length / 8, mask.Length * 3 / 8); // about a quarter
            File.WriteAllBytes(Path.Combine(_dir, "mask.f32"), MemoryMarshal.AsBytes(mask.AsSpan()).ToArray());
        }
        foreach (var (name, v) in new[] { ("x", x), ("a", a), ("b", b), ("g", g) }) File.WriteAllBytes(Path.Combine(_dir, name + ".f32"), MemoryMarshal.AsBytes(v.AsSpan()).ToArray());
        File.WriteAllBytes(Path.Combine(_dir, "w.bin"), w);
        Repo.Python(Repo.Reference("lora_reference.py"), "--dir", _dir);
        double[] Want(string name) => MemoryMarshal.Cast<byte, double>(File.ReadAllBytes(Path.Combine(_dir, name + ".f64"))).ToArray();

        using var two = new WorkerPool(2);
        using var one = new WorkerPool(1);
        var got = Duet(type, w, rows, inDim, outDim, rank, options.Scale, x, a, b, g, two, (dropout, seed));
        foreach (var (name, have) in new[] { ("y", got.Y), ("dx", got.Dx), ("da", got.DA), ("db", got.DB) })
        {
            var want = Want(name);
            Assert.Equal(want.Length, have.Length);
            double size = Math.Sqrt(want.Average(v => v * v));
            for (int i = 0; i < want.Length; i++)
                Assert.True(Math.Abs(have[i] - want[i]) <= 1e-5 * size, $"{typeName} {name}[{i}]: {have[i]} vs {want[i]} (rms {size})");
        }
        var single = Duet(type, w, rows, inDim, outDim, rank, options.Scale, x, a, b, g, one, (dropout, seed));
        Assert.Equal(got.Y, single.Y); Assert.Equal(got.Dx, single.Dx); Assert.Equal(got.DA, single.DA); Assert.Equal(got.DB, single.DB);
    }
}
