// Acceptance 6 of the engine issue: with a fixed seed, at least 1,000 mutated or truncated GGUF files and
// 1,000 safetensors models each end in a correct load (then a forward pass) or one clear format error:
// no other exception, no crash, no hang, no allocation sized by a lying length.
using System.Diagnostics;
using Duet.Formats.Gguf;
using Duet.Formats.SafeTensors;
using Duet.Tensors;

namespace Duet.Model.Tests;

public class FuzzTests
{
    private static LlamaConfig Tiny => new()
    {
        Dim = 32, Layers = 1, Heads = 2, KvHeads = 1, HeadDim = 16, RopeDim = 16, FfnDim = 64, Vocab = 300, ContextLength = 64,
        RopeStyle = Tensors.Kernels.RopeStyle.NeoX,
    };

    private static byte[] Mutate(byte[] original, Random rng)
    {
        var b = (byte[])original.Clone();
        switch (rng.Next(4))
        {
            case 0: // truncate
                return b[..rng.Next(b.Length)];
            case 1: // flip bits
                for (int i = rng.Next(1, 9); i > 0; i--) b[rng.Next(b.Length)] ^= (byte)(1 << rng.Next(8));
                return b;
            case 2: // a lying length or count: a huge or negative 64-bit value somewhere in the header area
                {
                    int at = rng.Next(Math.Min(b.Length - 8, 4096));
                    ulong[] lies = [ulong.MaxValue, 1UL << 62, 1UL << 40, 0x7FFFFFFF, 0x80000000, (ulong)rng.NextInt64()];
                    BitConverter.TryWriteBytes(b.AsSpan(at), lies[rng.Next(lies.Length)]);
                    return b;
                }
            default: // overwrite a run with random bytes
                {
                    int at = rng.Next(b.Length), len = Math.Min(rng.Next(1, 64), b.Length - at);
                    rng.NextBytes(b.AsSpan(at, len));
                    return b;
                }
        }
    }

    private static bool IsClearError(Exception e) => e is GgufFormatException or SafeTensorsFormatException or InvalidDataException
        or FileNotFoundException or Tokenizers.TokenizerFormatException;

    private static void LoadAndRun(string path)
    {
        using var m = LlamaModel.Load(path);
        var logits = m.LogitsOf([1, 2, 3]);
        Assert.Equal(m.Config.Vocab, logits.GetLength(1));
    }

    [Fact]
    public void Load_1000MutatedGgufFiles_EachLoadsOrGivesOneClearError()
    {
        var dir = Directory.CreateTempSubdirectory("duet-fuzz-gguf-").FullName;
        try
        {
            var good = Path.Combine(dir, "good.gguf");
            ModelPackage.WriteGguf(CanonicalModel.Random(Tiny, 3), good, GgmlType.Q8_0);
            LoadAndRun(good);
            var original = File.ReadAllBytes(good);
            var rng = new Random(20261122);
            int loaded = 0, rejected = 0;
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < 1000; i++)
            {
                var path = Path.Combine(dir, $"m{i % 8}.gguf");
                File.WriteAllBytes(path, Mutate(original, rng));
                try { LoadAndRun(path); loaded++; }
                catch (Exception e) when (IsClearError(e))
                {
                    Assert.False(string.IsNullOrWhiteSpace(e.Message));
                    rejected++;
                }
                catch (Exception e) { Assert.Fail($"mutation {i}: {e.GetType().Name}: {e.Message}"); }
            }
            Assert.Equal(1000, loaded + rejected);
            Assert.True(rejected > 300, $"only {rejected} of 1000 mutations were rejected");
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(120), $"took {sw.Elapsed}");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Load_1000MutatedSafetensorsModels_EachLoadsOrGivesOneClearError()
    {
        var dir = Directory.CreateTempSubdirectory("duet-fuzz-st-").FullName;
        try
        {
            var goodDir = Path.Combine(dir, "good");
            ModelPackage.WriteHfFolder(CanonicalModel.Random(Tiny, 4), goodDir, SafeTensorsDType.F16);
            LoadAndRun(goodDir);
            var weights = File.ReadAllBytes(Path.Combine(goodDir, "model.safetensors"));
            var config = File.ReadAllBytes(Path.Combine(goodDir, "config.json"));
            var rng = new Random(1122);
            int loaded = 0, rejected = 0;
            var work = Path.Combine(dir, "work");
            Directory.CreateDirectory(work);
            for (int i = 0; i < 1000; i++)
            {
                bool mutateConfig = i % 5 == 0;
                File.WriteAllBytes(Path.Combine(work, "model.safetensors"), mutateConfig ? weights : Mutate(weights, rng));
                File.WriteAllBytes(Path.Combine(work, "config.json"), mutateConfig ? Mutate(config, rng) : config);
                try { LoadAndRun(work); loaded++; }
                catch (Exception e) when (IsClearError(e)) { rejected++; }
                catch (Exception e) { Assert.Fail($"mutation {i} ({(mutateConfig ? "config.json" : "model.safetensors")}): {e.GetType().Name}: {e.Message}"); }
            }
            Assert.Equal(1000, loaded + rejected);
            Assert.True(rejected > 300, $"only {rejected} of 1000 mutations were rejected");
        }
        finally { Directory.Delete(dir, true); }
    }
}
