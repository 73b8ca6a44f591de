// The three matrix products of a linear layer y = x Wᵀ (W [out, in], HF layout) in training:
//   forward       y[N, out]   = x[N, in] · Wᵀ
//   input grad    dx[N, in]  += dy[N, out] · W
//   weight grad   dW[out, in] += dyᵀ · x
// Each output element is summed in a fixed order whatever the number of threads (rows or weight rows are split
// among threads, never the sum), so a run is bit-identical with 1 or 2 threads and resumes exactly.
using System.Numerics.Tensors;
using Duet.Tensors.Parallel;

namespace Duet.Training;

internal static unsafe class MatOps
{
    private sealed class Job
    {
        public float* A, B, C;
        public int Rows, In, Out;
    }

    [ThreadStatic] private static Job? t_job;

    private static Job Get(float* a, float* b, float* c, int rows, int inDim, int outDim)
    {
        var j = t_job ??= new Job();
        j.A = a; j.B = b; j.C = c; j.Rows = rows; j.In = inDim; j.Out = outDim;
        return j;
    }

    /// <summary>y = x · Wᵀ (overwrites y).</summary>
    public static void Forward(float* x, float* w, float* y, int rows, int inDim, int outDim, WorkerPool pool)
    {
        pool.For(rows, static (r0, r1, s) =>
        {
            var j = (Job)s!;
            for (int r = r0; r < r1; r++)
            {
                var xr = new ReadOnlySpan<float>(j.A + (long)r * j.In, j.In);
                float* yr = j.C + (long)r * j.Out;
                for (int o = 0; o < j.Out; o++) yr[o] = TensorPrimitives.Dot(xr, new ReadOnlySpan<float>(j.B + (long)o * j.In, j.In));
            }
        }, Get(x, w, y, rows, inDim, outDim));
    }

    /// <summary>dx += dy · W.</summary>
    public static void BackwardInput(float* dy, float* w, float* dx, int rows, int inDim, int outDim, WorkerPool pool)
    {
        pool.For(rows, static (r0, r1, s) =>
        {
            var j = (Job)s!;
            for (int r = r0; r < r1; r++)
            {
                var dxr = new Span<float>(j.C + (long)r * j.In, j.In);
                float* dyr = j.A + (long)r * j.Out;
                for (int o = 0; o < j.Out; o++)
                    if (dyr[o] != 0) TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(j.B + (long)o * j.In, j.In), dyr[o], dxr, dxr);
            }
        }, Get(dy, w, dx, rows, inDim, outDim));
    }

    /// <summary>dW += dyᵀ · x.</summary>
    public static void BackwardWeight(float* dy, float* x, float* dw, int rows, int inDim, int outDim, WorkerPool pool)
    {
        pool.For(outDim, static (o0, o1, s) =>
        {
            var j = (Job)s!;
            for (int o = o0; o < o1; o++)
            {
                var dwo = new Span<float>(j.C + (long)o * j.In, j.In);
                for (int r = 0; r < j.Rows; r++)
                {
                    float g = j.A[(long)r * j.Out + o];
                    if (g != 0) TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(j.B + (long)r * j.In, j.In), g, dwo, dwo);
                }
            }
        }, Get(dy, x, dw, rows, inDim, outDim));
    }
}
