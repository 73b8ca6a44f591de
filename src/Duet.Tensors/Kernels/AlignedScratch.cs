// Per-thread scratch on 64-byte boundaries, for kernels whose 512-bit loads must not straddle cache lines: a managed
// float[] starts 16 bytes into a line, so every Vector512 load from it touches two lines (the F16 prompt tiles ran
// at 0.6-0.7x their speed from such buffers). Grown, never shrunk; it lives as long as its thread (the worker pool's
// threads live as long as the process).
using System.Runtime.InteropServices;

namespace Duet.Tensors.Kernels;

internal static unsafe class AlignedScratch
{
    /// <summary>At least <paramref name="need"/> floats at a 64-byte boundary in <paramref name="p"/>, reallocated when shorter.</summary>
    public static float* Floats(ref float* p, ref long length, long need)
    {
        if (length < need)
        {
            if (p != null) NativeMemory.AlignedFree(p);
            p = (float*)NativeMemory.AlignedAlloc((nuint)(need * sizeof(float)), 64);
            length = need;
        }
        return p;
    }
}
