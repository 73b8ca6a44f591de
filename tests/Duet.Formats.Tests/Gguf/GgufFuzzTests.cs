// Seeded fuzzing of the reader: thousands of mutated and truncated variants of the small valid sample
// (bit flips, random byte overwrites, count/length fields overwritten with huge values, truncations, and
// combinations). Each variant must either parse, with every tensor readable, or fail with
// GgufFormatException; any other exception, or a slow run, fails the test. The seed is fixed, so a failure
// names a variant that reproduces.
using System.Buffers.Binary;
using System.Diagnostics;
using Duet.Formats.Gguf;

namespace Duet.Formats.Tests.Gguf;

public sealed class GgufFuzzTests
{
    private static readonly ulong[] HugeValues =
    [
        ulong.MaxValue, long.MaxValue, 1UL << 63, 1UL << 60, 1UL << 40, 5_000_000_000, 1UL << 32,
        uint.MaxValue, int.MaxValue, (ulong)int.MaxValue + 1, 0x3FFFFFE0, 1 << 20, 65536, 65, 0,
    ];

    [Fact]
    public void Parse_SeededMutations_ParseOrThrowFormatException()
    {
        var sample = SampleGguf.Build();
        byte[] original = sample.ToArray();
        int[] lengthFields = [.. sample.LengthFields];
        var random = new Random(20240611);
        int parsed = 0, rejected = 0;
        var clock = Stopwatch.StartNew();

        for (int variant = 0; variant < 3000; variant++)
        {
            byte[] bytes = (byte[])original.Clone();
            int kind = variant % 6;
            switch (kind)
            {
                case 0: // flip 1..4 random bits
                    for (int i = random.Next(1, 5); i > 0; i--)
                        bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8));
                    break;
                case 1: // overwrite 1..8 random bytes with random values
                    for (int i = random.Next(1, 9); i > 0; i--)
                        bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                    break;
                case 2: // a count or length field gets a huge (or zero) value
                    BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(lengthFields[random.Next(lengthFields.Length)]),
                        HugeValues[random.Next(HugeValues.Length)]);
                    break;
                case 3: // a uint64 anywhere in the header region gets a huge value
                {
                    int at = random.Next(0, original.Length - 128 - 8); // 128 bytes of tensor data at the end
                    BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at), HugeValues[random.Next(HugeValues.Length)]);
                    break;
                }
                case 4: // truncation
                    bytes = bytes[..random.Next(bytes.Length)];
                    break;
                default: // a length field, a bit flip and a truncation together
                    BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(lengthFields[random.Next(lengthFields.Length)]),
                        (ulong)random.NextInt64());
                    bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8));
                    bytes = bytes[..random.Next(bytes.Length / 2, bytes.Length + 1)];
                    break;
            }

            try
            {
                using var file = GgufFile.Parse(bytes);
                Touch(file);
                parsed++;
            }
            catch (GgufFormatException e)
            {
                Assert.False(string.IsNullOrWhiteSpace(e.Message));
                rejected++;
            }
            catch (Exception e)
            {
                Assert.Fail($"variant {variant} (kind {kind}) threw {e.GetType().Name} instead of GgufFormatException: {e}");
            }
        }

        clock.Stop();
        Assert.True(parsed > 0 && rejected > 0, $"parsed {parsed}, rejected {rejected}: the mutations should produce both outcomes");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"3000 variants took {clock.Elapsed}");
    }

    /// <summary>Reads everything a successful parse promises is readable.</summary>
    private static void Touch(GgufFile file)
    {
        foreach (var (key, value) in file.Metadata)
            _ = key.Length + value.ToString().Length;
        long sum = 0;
        foreach (var t in file.Tensors)
        {
            var span = file.GetTensorBytes(t);
            Assert.Equal(t.ByteSize, span.Length);
            Assert.True(t.FileOffset >= file.DataOffset && t.FileOffset + t.ByteSize <= file.Length);
            foreach (byte b in span)
                sum += b;
        }
        GC.KeepAlive(sum);
    }
}
