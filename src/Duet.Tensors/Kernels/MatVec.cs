// y = W x for a weight matrix W [rows, cols] stored row-major in any GGUF/safetensors element type,
// rows split across the worker pool. F32 rows are dotted in place; other types are expanded one row at a
// time into a per-thread buffer (fused int8 dot products for quantized types come next).
using System.Numerics.Tensors;
using Duet.Tensors.Parallel;
using Duet.Tensors.Quant;

namespace Duet.Tensors.Kernels;

/// <summary>A read-only view of a 2-D weight: rows of <see cref="Cols"/> elements of <see cref="Type"/>, contiguous.</summary>
public readonly unsafe struct WeightMatrix(GgmlType type, byte* data, int rows, int cols)
{
    public GgmlType Type { get; } = type;
    public byte* Data { get; } = data;
    public int Rows { get; } = rows;
    public int Cols { get; } = cols;
    public long RowBytes => GgmlTypeInfo.RowSize(Type, Cols);
    public ReadOnlySpan<byte> Row(int r) => new(Data + r * RowBytes, (int)RowBytes);

    /// <summary>Row r as floats.</summary>
    public void DequantizeRow(int r, Span<float> dst) => BlockFormats.DequantizeRow(Type, Row(r), dst[..Cols]);
}

public static unsafe class MatVec
{
    private sealed class Job
    {
        public WeightMatrix W;
        public float* X;
        public float* Y;
    }

    [ThreadStatic] private static float[]? t_row;
    [ThreadStatic] private static Job? t_job;

    /// <summary>y[r] = Σ_c W[r, c] x[c] for r in [0, W.Rows).   torch: F.linear(x, W)</summary>
    public static void Multiply(WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, WorkerPool? pool = null)
    {
        if (x.Length != w.Cols || y.Length != w.Rows)
            throw new ArgumentException($"MatVec: W is [{w.Rows}, {w.Cols}], x has {x.Length}, y has {y.Length}");
        fixed (float* px = x)
        fixed (float* py = y)
        {
            var job = t_job ??= new Job();
            job.W = w; job.X = px; job.Y = py;
            (pool ?? WorkerPool.Shared).For(w.Rows, static (s, e, st) => Rows((Job)st!, s, e), job);
        }
    }

    private static void Rows(Job job, int start, int end)
    {
        var w = job.W;
        var x = new ReadOnlySpan<float>(job.X, w.Cols);
        var y = new Span<float>(job.Y, w.Rows);
        if (w.Type == GgmlType.F32)
        {
            for (int r = start; r < end; r++) y[r] = TensorPrimitives.Dot(new ReadOnlySpan<float>(w.Data + (long)r * w.Cols * 4, w.Cols), x);
            return;
        }
        var buf = t_row is { } b && b.Length >= w.Cols ? b : t_row = new float[w.Cols];
        var row = buf.AsSpan(0, w.Cols);
        if (w.Type == GgmlType.F16)
        {
            for (int r = start; r < end; r++)
            {
                TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(w.Data + (long)r * w.Cols * 2, w.Cols), row);
                y[r] = TensorPrimitives.Dot(row, x);
            }
            return;
        }
        for (int r = start; r < end; r++)
        {
            w.DequantizeRow(r, row);
            y[r] = TensorPrimitives.Dot(row, x);
        }
    }
}
