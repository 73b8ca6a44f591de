// Single-precision matrix product for training: C[m×n] (= or +=) op(A)[m×k] · op(B)[k×n], row-major with leading
// dimensions, op(X) = Xᵀ when asked.   torch: c = a @ b  (or addmm_)
// GotoBLAS structure: for each block of KC values of k and each block of NC columns, op(B) is packed into panels of
// NR columns (NR values per k, shared by the threads); the rows are cut into blocks of up to MCP panels of MR rows,
// and whichever thread takes a block packs its op(A) (MR values per k, contiguous) into its own buffer, which stays in
// L2 while the block meets its column panels; a register-blocked micro-kernel multiplies an MR-row panel by an
// NR-column panel with FMAs into MR×NR accumulators (8 × 32 floats: sixteen 512-bit registers on AVX-512). Packing
// absorbs the transposes (8 × 8 register transposes where the source is row-major across the panel), so the four
// variants run the same kernel.
// Determinism: each element of C is the sum over k blocks in increasing order of the kernel's in-block sums, which
// run k in increasing order; threads split only the tiles of C (rows and column panels), never k. So the bits of C
// do not depend on the thread count or partition, which training needs to resume exactly.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Duet.Tensors.Parallel;

namespace Duet.Tensors.Kernels;

public static unsafe class Sgemm
{

    private const int MR = 8, NR = 32, KC = 384, NC = 2048;
    /// <summary>Most row panels per block: MCP · MR rows × KC floats of packed A (384 KB) stay in L2 while the block
    /// meets its column panels.</summary>
    private const int MCP = 32;
    /// <summary>Below this many multiply-adds a product runs on the calling thread (a pool wake-up costs more).</summary>
    private const long ParallelWork = 1 << 18;

    /// <summary>Span form with size checks: C[m×n] (=|+=) op(A)·op(B).</summary>
    public static void Gemm(bool transA, bool transB, int m, int n, int k, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        Span<float> c, int ldc, bool accumulate, WorkerPool? pool = null)
    {
        if (m < 0 || n < 0 || k < 0) throw new ArgumentException($"negative sizes m {m}, n {n}, k {k}");
        static long Need(int rows, int cols, int ld) => rows == 0 || cols == 0 ? 0 : (long)(rows - 1) * ld + cols;
        int ar = transA ? k : m, ac = transA ? m : k, br = transB ? n : k, bc = transB ? k : n;
        if (lda < ac || ldb < bc || ldc < n) throw new ArgumentException($"leading dimensions lda {lda}, ldb {ldb}, ldc {ldc} smaller than rows of {ac}, {bc}, {n}");
        if (a.Length < Need(ar, ac, lda)) throw new ArgumentException($"A holds {a.Length} floats, op(A) of {m}×{k} (trans {transA}, lda {lda}) needs {Need(ar, ac, lda)}");
        if (b.Length < Need(br, bc, ldb)) throw new ArgumentException($"B holds {b.Length} floats, op(B) of {k}×{n} (trans {transB}, ldb {ldb}) needs {Need(br, bc, ldb)}");
        if (c.Length < Need(m, n, ldc)) throw new ArgumentException($"C holds {c.Length} floats, {m}×{n} (ldc {ldc}) needs {Need(m, n, ldc)}");
        fixed (float* pa = a, pb = b, pc = c) Gemm(transA, transB, m, n, k, pa, lda, pb, ldb, pc, ldc, accumulate, pool);
    }

    private sealed class Work
    {
        public float* A, B, C, PackB;
        public int M, N, K, Lda, Ldb, Ldc, Kc, K0, J0, Nc, MPanels, NPanels, Mcp, MBlocks, Ncp, NGroups;
        public bool TransA, TransB, Add;
        public SimdLevel Isa;
    }

    [ThreadStatic] private static Work? t_work;
    [ThreadStatic] private static float* t_packA, t_packB;
    [ThreadStatic] private static long t_packALength, t_packBLength;


    /// <summary>C[m×n] (=|+=) op(A)·op(B) on raw pointers (no checks beyond sizes ≥ 0).</summary>
    public static void Gemm(bool transA, bool transB, int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate, WorkerPool? pool = null)
    {
        if (m <= 0 || n <= 0) return;
        if (k <= 0)
        {
            if (!accumulate) for (int i = 0; i < m; i++) new Span<float>(c + (long)i * ldc, n).Clear();
            return;
        }
        int mPanels = (m + MR - 1) / MR;
        var w = t_work ??= new Work();
        w.A = a; w.B = b; w.C = c; w.M = m; w.N = n; w.K = k; w.Lda = lda; w.Ldb = ldb; w.Ldc = ldc; w.TransA = transA; w.TransB = transB;
        w.MPanels = mPanels; w.Isa = CpuProfile.Current.Level;
        w.PackB = AlignedScratch.Floats(ref t_packB, ref t_packBLength, (long)NC * KC);
        bool parallel = pool is { Threads: > 1 } && (long)m * n * k >= ParallelWork;
        // Work items: a block of row panels (its A packed by the thread that takes it, kept in L2) against a group of
        // column panels. Row blocks as large as MCP allows, of even size (each column panel meets as many rows as it
        // can while it is in L1); the columns are split into groups when that leaves fewer than four items per thread,
        // into a multiple of the thread count of items.
        int threads = parallel ? pool!.Threads : 1, want = 4 * threads;
        w.MBlocks = (mPanels + MCP - 1) / MCP;
        w.Mcp = (mPanels + w.MBlocks - 1) / w.MBlocks;
        w.MBlocks = (mPanels + w.Mcp - 1) / w.Mcp;
        // k in as few blocks of at most KC as it takes, of even length: 288 = one block, not 256 + 32 (each block
        // reads and writes C once more). The cut depends on k alone, never on the threads.
        int kBlocks = (k + KC - 1) / KC, kcEven = (k + kBlocks - 1) / kBlocks;
        for (int k0 = 0; k0 < k; k0 += kcEven)
        {
            w.K0 = k0; w.Kc = Math.Min(kcEven, k - k0);
            w.Add = accumulate || k0 > 0;
            for (int j0 = 0; j0 < n; j0 += NC)
            {
                w.J0 = j0; w.Nc = Math.Min(NC, n - j0);
                w.NPanels = (w.Nc + NR - 1) / NR;
                int groups = parallel ? Math.Clamp((want + w.MBlocks - 1) / w.MBlocks, 1, w.NPanels) : 1;
                while (parallel && w.MBlocks * groups % threads != 0 && groups < w.NPanels) groups++;
                w.Ncp = (w.NPanels + groups - 1) / groups;
                w.NGroups = (w.NPanels + w.Ncp - 1) / w.Ncp;
                if (parallel) pool!.For(w.NPanels, new PackBPanels(w)); else PackB(w, 0, w.NPanels);
                int items = w.MBlocks * w.NGroups;
                if (parallel) pool!.For(items, new ComputeItems(w)); else Compute(w, 0, items);
            }
        }
    }

    private readonly struct PackBPanels(Work w) : IRangeOp { public void Run(int start, int end) => PackB(w, start, end); }
    private readonly struct ComputeItems(Work w) : IRangeOp { public void Run(int start, int end) => Compute(w, start, end); }

    // Panels [p0, p1) of op(A)[rows p·MR.., k0..k0+kc] into dst: for each k, MR row values (zero past the last row).
    private static void PackA(Work w, float* packA, int p0, int p1)
    {
        int rest = p0;
        if (w.TransA && Vector256.IsHardwareAccelerated)
        {
            // op(A) = Aᵀ: a panel's MR values per k lie side by side in row k of A. Walk the rows (each row's stretch
            // for the block read front to back, one page at a time) and deal each panel its eight values.
            int full = Math.Min(p1, w.M / MR);
            for (int kk = 0; kk < w.Kc; kk++)
            {
                float* src = w.A + (long)(w.K0 + kk) * w.Lda;
                float* dst = packA + kk * MR;
                for (int p = p0; p < full; p++) Vector256.Store(Vector256.Load(src + p * MR), dst + (long)(p - p0) * MR * KC);
            }
            rest = Math.Max(p0, full);   // a last, partial panel below
        }
        for (int p = rest; p < p1; p++)
        {
            float* dst = packA + (long)(p - p0) * MR * KC;
            int i0 = p * MR, rows = Math.Min(MR, w.M - i0);
            int kk = 0;
            // a full panel of row-major A: 8 × 8 blocks transposed in registers (the scalar loop below gathers the rest)
            if (!w.TransA && rows == MR && Avx.IsSupported)
                for (; kk + 8 <= w.Kc; kk += 8) Transpose8x8(w.A + (long)i0 * w.Lda + w.K0 + kk, w.Lda, dst + kk * MR, MR);
            for (; kk < w.Kc; kk++)
            {
                int kx = w.K0 + kk;
                float* d = dst + kk * MR;
                if (w.TransA) { float* src = w.A + (long)kx * w.Lda + i0; for (int r = 0; r < rows; r++) d[r] = src[r]; }
                else for (int r = 0; r < rows; r++) d[r] = w.A[(long)(i0 + r) * w.Lda + kx];
                for (int r = rows; r < MR; r++) d[r] = 0;
            }
        }
    }

    // Panel p of op(B)[k0..k0+kc, columns j0 + p·NR..]: for each k, NR column values (zero past the last column).
    private static void PackB(Work w, int p0, int p1)
    {
        for (int p = p0; p < p1; p++)
        {
            float* dst = w.PackB + (long)p * NR * KC;
            int j = w.J0 + p * NR, cols = Math.Min(NR, w.N - j);
            if (!w.TransB)
                for (int kk = 0; kk < w.Kc; kk++)
                {
                    float* src = w.B + (long)(w.K0 + kk) * w.Ldb + j, d = dst + kk * NR;
                    new ReadOnlySpan<float>(src, cols).CopyTo(new Span<float>(d, cols));
                    for (int q = cols; q < NR; q++) d[q] = 0;
                }
            else
            {
                int q = 0;
                // columns of Bᵀ are rows of B: 8 × 8 blocks transposed in registers, the rest gathered one by one
                if (Avx.IsSupported)
                    for (; q + 8 <= cols; q += 8)
                    {
                        int kk = 0;
                        float* src = w.B + (long)(j + q) * w.Ldb + w.K0;
                        for (; kk + 8 <= w.Kc; kk += 8) Transpose8x8(src + kk, w.Ldb, dst + kk * NR + q, NR);
                        for (; kk < w.Kc; kk++) for (int x = 0; x < 8; x++) dst[kk * NR + q + x] = src[(long)x * w.Ldb + kk];
                    }
                for (; q < cols; q++)
                {
                    float* src = w.B + (long)(j + q) * w.Ldb + w.K0;
                    for (int kk = 0; kk < w.Kc; kk++) dst[kk * NR + q] = src[kk];
                }
                for (; q < NR; q++) for (int kk = 0; kk < w.Kc; kk++) dst[kk * NR + q] = 0;
            }
        }
    }

    // dst[j][r] = src[r][j] for an 8 × 8 block: rows of src lds floats apart, rows of dst ldd apart (unpack, shuffle,
    // then swap 128-bit halves: the usual AVX transpose).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(float* src, long lds, float* dst, int ldd)
    {
        var r0 = Avx.LoadVector256(src); var r1 = Avx.LoadVector256(src + lds); var r2 = Avx.LoadVector256(src + 2 * lds); var r3 = Avx.LoadVector256(src + 3 * lds);
        var r4 = Avx.LoadVector256(src + 4 * lds); var r5 = Avx.LoadVector256(src + 5 * lds); var r6 = Avx.LoadVector256(src + 6 * lds); var r7 = Avx.LoadVector256(src + 7 * lds);
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1); var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5); var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE); var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE); var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20)); Avx.Store(dst + ldd, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2 * ldd, Avx.Permute2x128(u2, u6, 0x20)); Avx.Store(dst + 3 * ldd, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4 * ldd, Avx.Permute2x128(u0, u4, 0x31)); Avx.Store(dst + 5 * ldd, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6 * ldd, Avx.Permute2x128(u2, u6, 0x31)); Avx.Store(dst + 7 * ldd, Avx.Permute2x128(u3, u7, 0x31));
    }

    // Items [i0, i1): item i is row block i / NGroups against column group i % NGroups; a block's A is packed once
    // for the consecutive items of this range that share it.
    private static void Compute(Work w, int i0, int i1)
    {
        float* tile = stackalloc float[MR * NR];
        float* packA = AlignedScratch.Floats(ref t_packA, ref t_packALength, (long)w.Mcp * MR * KC);
        int packed = -1;
        for (int item = i0; item < i1; item++)
        {
            int block = item / w.NGroups, group = item - block * w.NGroups;
            int p0 = block * w.Mcp, p1 = Math.Min(w.MPanels, p0 + w.Mcp);
            if (block != packed) { PackA(w, packA, p0, p1); packed = block; }
            int q0 = group * w.Ncp, q1 = Math.Min(w.NPanels, q0 + w.Ncp);
            for (int np = q0; np < q1; np++)
                for (int mp = p0; mp < p1; mp++)
                {
                    int r0 = mp * MR, j0 = w.J0 + np * NR;
                    int rows = Math.Min(MR, w.M - r0), cols = Math.Min(NR, w.N - j0);
                    float* pa = packA + (long)(mp - p0) * MR * KC, pb = w.PackB + (long)np * NR * KC;
                    float* c = w.C + (long)r0 * w.Ldc + j0;
                    if (rows == MR && cols == NR) Kernel(w.Isa, pa, pb, w.Kc, c, w.Ldc, w.Add);
                    else
                    {
                        Kernel(w.Isa, pa, pb, w.Kc, tile, NR, add: false);
                        for (int r = 0; r < rows; r++)
                        {
                            float* cr = c + (long)r * w.Ldc, tr = tile + r * NR;
                            if (w.Add) for (int q = 0; q < cols; q++) cr[q] += tr[q];
                            else for (int q = 0; q < cols; q++) cr[q] = tr[q];
                        }
                    }
                }
        }
    }

    private static void Kernel(SimdLevel isa, float* a, float* b, int kc, float* c, int ldc, bool add)
    {
        switch (isa)
        {
            case SimdLevel.Avx512: KernelAvx512(a, b, kc, c, ldc, add); break;
            case SimdLevel.Avx2:
                for (int half = 0; half < 2; half++)
                    for (int quarter = 0; quarter < 2; quarter++) KernelAvx2(a + quarter * 4, b + half * 16, kc, c + (long)quarter * 4 * ldc + half * 16, ldc, add);
                break;
            default: KernelPortable(a, b, kc, c, ldc, add); break;
        }
    }

    // 8 rows × 32 columns: per k, two loads of B, eight broadcasts of A, sixteen FMAs.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void KernelAvx512(float* a, float* b, int kc, float* c, int ldc, bool add)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        for (int k = 0; k < kc; k++)
        {
            var b0 = Avx512F.LoadAlignedVector512(b); var b1 = Avx512F.LoadAlignedVector512(b + 16);
            var x = Vector512.Create(a[0]); c00 = Avx512F.FusedMultiplyAdd(x, b0, c00); c01 = Avx512F.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a[1]); c10 = Avx512F.FusedMultiplyAdd(x, b0, c10); c11 = Avx512F.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a[2]); c20 = Avx512F.FusedMultiplyAdd(x, b0, c20); c21 = Avx512F.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a[3]); c30 = Avx512F.FusedMultiplyAdd(x, b0, c30); c31 = Avx512F.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a[4]); c40 = Avx512F.FusedMultiplyAdd(x, b0, c40); c41 = Avx512F.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a[5]); c50 = Avx512F.FusedMultiplyAdd(x, b0, c50); c51 = Avx512F.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(a[6]); c60 = Avx512F.FusedMultiplyAdd(x, b0, c60); c61 = Avx512F.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(a[7]); c70 = Avx512F.FusedMultiplyAdd(x, b0, c70); c71 = Avx512F.FusedMultiplyAdd(x, b1, c71);
            a += MR; b += NR;
        }
        Store512(c, c00, c01, add); Store512(c + ldc, c10, c11, add); Store512(c + 2L * ldc, c20, c21, add); Store512(c + 3L * ldc, c30, c31, add);
        Store512(c + 4L * ldc, c40, c41, add); Store512(c + 5L * ldc, c50, c51, add); Store512(c + 6L * ldc, c60, c61, add); Store512(c + 7L * ldc, c70, c71, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store512(float* c, Vector512<float> v0, Vector512<float> v1, bool add)
    {
        if (add) { v0 += Vector512.Load(c); v1 += Vector512.Load(c + 16); }
        v0.Store(c); v1.Store(c + 16);
    }

    // 4 rows × 16 columns of the packed 8 × 32 panels (a advances by MR, b by NR per k).
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void KernelAvx2(float* a, float* b, int kc, float* c, int ldc, bool add)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        for (int k = 0; k < kc; k++)
        {
            var b0 = Vector256.Load(b); var b1 = Vector256.Load(b + 8);
            var x = Vector256.Create(a[0]); c00 = Fma.MultiplyAdd(x, b0, c00); c01 = Fma.MultiplyAdd(x, b1, c01);
            x = Vector256.Create(a[1]); c10 = Fma.MultiplyAdd(x, b0, c10); c11 = Fma.MultiplyAdd(x, b1, c11);
            x = Vector256.Create(a[2]); c20 = Fma.MultiplyAdd(x, b0, c20); c21 = Fma.MultiplyAdd(x, b1, c21);
            x = Vector256.Create(a[3]); c30 = Fma.MultiplyAdd(x, b0, c30); c31 = Fma.MultiplyAdd(x, b1, c31);
            a += MR; b += NR;
        }
        Store256(c, c00, c01, add); Store256(c + ldc, c10, c11, add); Store256(c + 2L * ldc, c20, c21, add); Store256(c + 3L * ldc, c30, c31, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store256(float* c, Vector256<float> v0, Vector256<float> v1, bool add)
    {
        if (add) { v0 += Vector256.Load(c); v1 += Vector256.Load(c + 8); }
        v0.Store(c); v1.Store(c + 8);
    }

    // Any CPU: the same sums, one element at a time (each with a fused multiply-add, as the vector kernels).
    private static void KernelPortable(float* a, float* b, int kc, float* c, int ldc, bool add)
    {
        for (int r = 0; r < MR; r++)
            for (int q = 0; q < NR; q++)
            {
                float s = 0;
                for (int k = 0; k < kc; k++) s = MathF.FusedMultiplyAdd(a[k * MR + r], b[k * NR + q], s);
                float* cr = c + (long)r * ldc + q;
                *cr = add ? *cr + s : s;
            }
    }
}
