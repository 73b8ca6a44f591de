// The CPU profiles a kernel test runs under: every profile this CPU can execute (CpuProfile.Runnable), by name, as
// theory data, so that the test output lists each path a kernel ran on, e.g.
//   dotnet test tests/Duet.Tensors.Tests --logger "console;verbosity=normal" --filter "FullyQualifiedName~MatVec_AnyType"
// The profile is process-wide, so the tests that switch it form one collection that xUnit runs alone, after the
// tests that run in parallel.
using Duet.Tensors.Kernels;

namespace Duet.Tensors.Tests;

[CollectionDefinition(nameof(CpuPaths), DisableParallelization = true)]
public sealed class CpuPaths
{
    /// <summary>Every runnable profile's name: theory data for a test whose only parameter is the profile.</summary>
    public static IEnumerable<object[]> Names => CpuProfile.Runnable().Select(p => new object[] { p.Name });

    /// <summary>Each case once per runnable profile, the profile's name appended as the last argument.</summary>
    public static IEnumerable<object[]> Cross(params object[][] cases) =>
        from c in cases from p in CpuProfile.Runnable() select c.Append(p.Name).ToArray();
}
