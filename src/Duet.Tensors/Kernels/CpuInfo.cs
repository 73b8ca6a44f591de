using System.Runtime.Intrinsics.X86;

namespace Duet.Tensors.Kernels;

/// <summary>
/// What the kernels choose by besides instruction sets: the vendor, where the same instructions measure
/// differently (memory streams, denormal operands; see MatVec and HalfDot).
/// </summary>
public static class CpuInfo
{
    /// <summary>True on an AMD CPU ("AuthenticAMD").</summary>
    public static bool IsAmd { get; } = ReadIsAmd();

    private static bool ReadIsAmd()
    {
        if (!X86Base.IsSupported) return false;
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        return ebx == 0x68747541 && edx == 0x69746E65 && ecx == 0x444D4163;
    }
}
