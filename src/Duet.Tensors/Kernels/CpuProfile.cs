// The one place where Duet decides what the CPU can do and how its kernels should run on it: the instruction-set
// level, the optional instructions that change a kernel (AVX-VNNI, AVX-512 VBMI) and the traits measured on the
// machines seen so far, by name. Every kernel reads CpuProfile.Current; none asks the hardware itself.
//
// Traits are measurements, not instruction sets: the same instructions run faster one way on one CPU and the
// other way on another. They are set from the vendor, since that is where the measurements split
// (bench/README.md#kernel-choices has the figures):
//   row_after_row   decode streams weight rows faster one after another than four side by side
//                   (AMD Zen 4: yes; the Intel Xeon measured: no, four rows side by side were faster there)
//   free_denormals  an FMA with a denormal operand costs nothing, so HalfDot may take its scaled form and
//                   Q4_0 decode its permuted kernel (AMD Zen 4: yes; Intel: microcode assists)
//
// DUET_CPU overrides the detected profile, for comparisons and for running a slower path on purpose:
//   DUET_CPU=portable | avx2 | avx512           the level (never above what the CPU has)
//   DUET_CPU=avx512-vbmi+row_after_row          the level, then names switched on (+) or off (-)
//   DUET_CPU=-free_denormals                    the detected level with one trait switched off
// Names: avx_vnni, vbmi (instructions: only where the CPU has them), row_after_row, free_denormals (traits).
// Tests run each kernel under every profile this CPU can execute (Runnable) by CpuProfile.Use.
using System.Runtime.Intrinsics.X86;
using X86 = System.Runtime.Intrinsics.X86;
using System.Text;
using System.Text.RegularExpressions;

namespace Duet.Tensors.Kernels;

/// <summary>The widest vector instructions the kernels may use.</summary>
public enum SimdLevel
{
    /// <summary>Plain scalar loops (and whatever System.Numerics.Tensors picks for itself).</summary>
    Portable = 0,
    /// <summary>AVX2 with FMA: 256-bit kernels.</summary>
    Avx2 = 1,
    /// <summary>AVX-512 F, BW, DQ and VL: 512-bit kernels.</summary>
    Avx512 = 2,
}

/// <summary>What the kernels choose their path by: see the file header. Immutable; <see cref="Current"/> is the one in force.</summary>
public sealed record CpuProfile
{
    /// <summary>The widest vector instructions in use.</summary>
    public required SimdLevel Level { get; init; }
    /// <summary>The VEX-encoded vpdpbusd/vpdpwssd (AvxVnni): int8 and int16 dots in one instruction.</summary>
    public bool AvxVnni { get; init; }
    /// <summary>AVX-512 VBMI byte permutes (vpermb, vpermt2b): the permuted Q4_0 decode kernel.</summary>
    public bool Vbmi { get; init; }
    /// <summary>Trait: decode reads weight rows one after another (else four side by side).</summary>
    public bool RowAfterRow { get; init; }
    /// <summary>Trait: denormal FMA operands are free, so fp16 rows take HalfDot's scaled form.</summary>
    public bool FreeDenormals { get; init; }
    /// <summary>"AuthenticAMD", "GenuineIntel", or "" where CPUID is not available.</summary>
    public string Vendor { get; init; } = "";
    /// <summary>The processor's brand string, as CPUID gives it.</summary>
    public string Model { get; init; } = "";
    /// <summary>
    /// One core's level-2 cache in bytes, from CPUID's cache descriptors (leaf 4 on Intel, 0x8000001D on AMD); 1 MiB
    /// where CPUID does not say. Blocked kernels size the operands they keep resident by it (FloatGemm's row and
    /// token blocks).
    /// </summary>
    public long L2Bytes { get; init; } = 1 << 20;

    /// <summary>AVX2 and FMA kernels run.</summary>
    public bool Avx2 => Level >= SimdLevel.Avx2;
    /// <summary>AVX-512 kernels run.</summary>
    public bool Avx512 => Level >= SimdLevel.Avx512;

    /// <summary>The profile in its DUET_CPU form, every switch spelled out: e.g. "avx512-avx_vnni+vbmi+row_after_row+free_denormals".</summary>
    public string Name
    {
        get
        {
            var sb = new StringBuilder(Level.ToString().ToLowerInvariant());
            foreach (var (name, on) in Switches()) sb.Append(on ? '+' : '-').Append(name);
            return sb.ToString();
        }
    }

    /// <summary>One line for people: the CPU, the level, each switch on or off, and where the profile came from.</summary>
    public string Describe()
    {
        var sb = new StringBuilder();
        sb.Append(Model.Length > 0 ? Model : Vendor.Length > 0 ? Vendor : "unknown CPU").Append(": ").Append(Level.ToString().ToLowerInvariant());
        foreach (var (name, on) in Switches()) sb.Append(on ? " +" : " -").Append(name);
        sb.Append($", L2 {L2Bytes >> 10} KiB");
        sb.Append(s_override is { } o ? $" (DUET_CPU={o})" : " (detected)");
        return sb.ToString();
    }

    public override string ToString() => Name;

    private IEnumerable<(string Name, bool On)> Switches() =>
        [("avx_vnni", AvxVnni), ("vbmi", Vbmi), ("row_after_row", RowAfterRow), ("free_denormals", FreeDenormals)];

    // ---- the hardware ----

    /// <summary>What this CPU has, with the traits measured for its vendor.</summary>
    public static CpuProfile Detected { get; } = Detect();

    private static CpuProfile Detect()
    {
        var level = Avx512F.IsSupported && Avx512BW.IsSupported && Avx512DQ.IsSupported && Avx512F.VL.IsSupported && Fma.IsSupported ? SimdLevel.Avx512
            : X86.Avx2.IsSupported && Fma.IsSupported ? SimdLevel.Avx2 : SimdLevel.Portable;
        string vendor = "", model = "";
        if (X86Base.IsSupported)
        {
            var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
            vendor = Ascii(ebx, edx, ecx);
            var (max, _, _, _) = X86Base.CpuId(unchecked((int)0x80000000), 0);
            if ((uint)max >= 0x80000004)
            {
                var sb = new StringBuilder();
                for (uint leaf = 0x80000002; leaf <= 0x80000004; leaf++)
                {
                    var (a, b, c, d) = X86Base.CpuId((int)leaf, 0);
                    sb.Append(Ascii(a, b, c, d));
                }
                model = sb.ToString().TrimEnd('\0').Trim();
            }
        }
        bool amd = vendor == "AuthenticAMD";
        return new CpuProfile
        {
            Level = level,
            AvxVnni = level >= SimdLevel.Avx2 && X86.AvxVnni.IsSupported,
            Vbmi = level >= SimdLevel.Avx512 && Avx512Vbmi.IsSupported,
            RowAfterRow = amd,
            FreeDenormals = amd,
            Vendor = vendor,
            Model = model,
            L2Bytes = L2Size(vendor) ?? 1 << 20,
        };
    }

    // CPUID's deterministic cache parameters: subleaf i describes one cache (EAX[4:0] type, 0 = no more; EAX[7:5]
    // level); its size is ways x partitions x line size x sets, each stored minus one (EBX[31:22], EBX[21:12],
    // EBX[11:0], ECX). Intel lists them under leaf 4, AMD under 0x8000001D, in the same layout.
    private static long? L2Size(string vendor)
    {
        if (!X86Base.IsSupported) return null;
        uint leaf = vendor == "AuthenticAMD" ? 0x8000001D : 4;
        var (max, _, _, _) = X86Base.CpuId(unchecked((int)(leaf & 0x80000000)), 0);
        if ((uint)max < leaf) return null;
        for (int i = 0; i < 16; i++)
        {
            var (a, b, c, _) = X86Base.CpuId(unchecked((int)leaf), i);
            int type = a & 31, level = (a >> 5) & 7;
            if (type == 0) break;
            if (level != 2 || type == 1) continue; // 1: data only (an L2 is unified, type 3)
            long size = (long)(((uint)b >> 22) + 1) * ((((uint)b >> 12) & 0x3FF) + 1) * (((uint)b & 0xFFF) + 1) * ((uint)c + 1L);
            return size is >= 64 << 10 and <= 64 << 20 ? size : null;
        }
        return null;
    }

    private static string Ascii(params int[] words)
    {
        var bytes = new byte[words.Length * 4];
        for (int i = 0; i < words.Length; i++) BitConverter.TryWriteBytes(bytes.AsSpan(i * 4), words[i]);
        return Encoding.ASCII.GetString(bytes).TrimEnd('\0');
    }

    // ---- the profile in force ----

    private static CpuProfile? s_current;
    private static string? s_override;
    private static readonly object s_lock = new();

    /// <summary>
    /// The profile the kernels run by: <see cref="Detected"/>, or DUET_CPU applied to it. Throws
    /// <see cref="ArgumentException"/> (every time it is asked, so a program can report it) when DUET_CPU is invalid.
    /// </summary>
    public static CpuProfile Current => s_current ?? FromEnvironment();

    private static CpuProfile FromEnvironment()
    {
        lock (s_lock)
        {
            if (s_current is { } c) return c;
            var spec = Environment.GetEnvironmentVariable("DUET_CPU");
            var p = string.IsNullOrWhiteSpace(spec) ? Detected : Parse(spec, Detected);
            s_override = string.IsNullOrWhiteSpace(spec) ? null : spec.Trim();
            return s_current = p;
        }
    }

    private static readonly Regex s_token = new(@"\G\s*([+\-,]?)\s*([A-Za-z0-9_]+)\s*", RegexOptions.CultureInvariant);

    /// <summary>
    /// <paramref name="spec"/> (DUET_CPU's form, see the file header) applied to <paramref name="hardware"/>.
    /// ArgumentException for an unknown name or for anything the hardware does not have.
    /// </summary>
    public static CpuProfile Parse(string spec, CpuProfile hardware)
    {
        const string names = "levels portable, avx2, avx512; switches avx_vnni, vbmi, row_after_row, free_denormals";
        var p = hardware;
        int at = 0, index = 0;
        spec = spec.Trim();
        while (at < spec.Length)
        {
            var m = s_token.Match(spec, at);
            if (!m.Success || m.Length == 0) throw new ArgumentException($"DUET_CPU='{spec}': cannot read '{spec[at..]}' ({names})");
            at += m.Length;
            string sign = m.Groups[1].Value, name = m.Groups[2].Value.ToLowerInvariant();
            bool on = sign != "-";
            if (Enum.TryParse<SimdLevel>(name, ignoreCase: true, out var level) && !int.TryParse(name, out _))
            {
                if (index != 0 || sign.Length > 0) throw new ArgumentException($"DUET_CPU='{spec}': the level '{name}' must come first");
                if (level > hardware.Level) throw new ArgumentException($"DUET_CPU='{spec}': this CPU runs at most {hardware.Level.ToString().ToLowerInvariant()}");
                p = p with { Level = level, AvxVnni = p.AvxVnni && level >= SimdLevel.Avx2, Vbmi = p.Vbmi && level >= SimdLevel.Avx512 };
            }
            else
            {
                p = name switch
                {
                    "avx_vnni" => p with { AvxVnni = on && Need(hardware.AvxVnni && p.Avx2, "avx_vnni", spec) },
                    "vbmi" => p with { Vbmi = on && Need(hardware.Vbmi && p.Avx512, "vbmi", spec) },
                    "row_after_row" => p with { RowAfterRow = on },
                    "free_denormals" => p with { FreeDenormals = on },
                    _ => throw new ArgumentException($"DUET_CPU='{spec}': unknown name '{name}' ({names})"),
                };
            }
            index++;
        }
        return p;

        static bool Need(bool have, string name, string spec) =>
            have ? true : throw new ArgumentException($"DUET_CPU='{spec}': {name} needs an instruction this CPU (or the chosen level) does not have");
    }

    /// <summary>
    /// Every distinct profile this CPU can execute, for tests: portable, AVX2 (with and without AVX-VNNI where
    /// present), and AVX-512 as detected and with each switch that changes a kernel flipped.
    /// </summary>
    public static IReadOnlyList<CpuProfile> Runnable()
    {
        var d = Detected;
        var list = new List<CpuProfile> { d with { Level = SimdLevel.Portable, AvxVnni = false, Vbmi = false } };
        if (d.Avx2)
        {
            list.Add(d with { Level = SimdLevel.Avx2, Vbmi = false });
            if (d.AvxVnni) list.Add(d with { Level = SimdLevel.Avx2, Vbmi = false, AvxVnni = false });
        }
        if (d.Avx512)
        {
            list.Add(d);
            list.Add(d with { RowAfterRow = !d.RowAfterRow });
            list.Add(d with { FreeDenormals = !d.FreeDenormals });
            if (d.Vbmi) list.Add(d with { Vbmi = false });
            if (d.AvxVnni) list.Add(d with { AvxVnni = false });
        }
        return list.DistinctBy(p => p.Name).ToList();
    }

    /// <summary>
    /// Makes <paramref name="profile"/> the current one until the result is disposed (tests; the profile must be
    /// runnable here). Not for concurrent use: every kernel in the process reads it.
    /// </summary>
    public static IDisposable Use(CpuProfile profile)
    {
        var d = Detected;
        if (profile.Level > d.Level || profile.AvxVnni && !d.AvxVnni || profile.Vbmi && !d.Vbmi)
            throw new ArgumentException($"the profile {profile.Name} needs instructions this CPU ({d.Name}) does not have");
        var saved = Current;
        s_current = profile;
        return new Restore(saved);
    }

    /// <summary><see cref="Use(CpuProfile)"/> by <see cref="Name"/>: the form test theories pass.</summary>
    public static IDisposable Use(string name) => Use(Parse(name, Detected));

    private sealed class Restore(CpuProfile saved) : IDisposable
    {
        public void Dispose() => s_current = saved;
    }
}
