// The three matrix products of a linear layer y = x Wᵀ (W [out, in], HF layout) in training:
//   forward       y[N, out]   = x[N, in] · Wᵀ
//   input grad    dx[N, in]  += dy[N, out] · W
//   weight grad   dW[out, in] += dyᵀ · x
// All three run on Sgemm (Duet.Tensors), whose sums do not depend on the thread count, so a run is bit-identical
// with 1 or 2 threads and resumes exactly.
using Duet.Tensors.Kernels;
using Duet.Tensors.Parallel;

namespace Duet.Training;

internal static unsafe class MatOps
{
    /// <summary>y = x · Wᵀ (overwrites y).</summary>
    public static void Forward(float* x, float* w, int rows, int inDim, int outDim, float* y, WorkerPool pool) =>
        Sgemm.Gemm(false, true, rows, outDim, inDim, x, inDim, w, inDim, y, outDim, accumulate: false, pool);

    /// <summary>dx += dy · W (dx = dy · W when not <paramref name="accumulate"/>).</summary>
    public static void BackwardInput(float* dy, float* w, int rows, int inDim, int outDim, float* dx, WorkerPool pool, bool accumulate = true) =>
        Sgemm.Gemm(false, false, rows, inDim, outDim, dy, outDim, w, inDim, dx, inDim, accumulate, pool);

    /// <summary>dW += dyᵀ · x.</summary>
    public static void BackwardWeight(float* dy, float* x, int rows, int inDim, int outDim, float* dw, WorkerPool pool) =>
        Sgemm.Gemm(true, false, outDim, inDim, rows, dy, outDim, x, inDim, dw, inDim, accumulate: true, pool);
}
