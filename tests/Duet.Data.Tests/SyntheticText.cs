// Seeded pseudo-text for pipeline tests: sentences of pseudo-words (3 to 8 letters) with English stop words between
// them (varied enough that no word 5-gram repeats, English enough for the tagger), and Chinese-like sentences of
// Han characters drawn from the first `alphabet` of the block.
using System.Text;

namespace Duet.Data.Tests;

internal static class SyntheticText
{
    private static readonly string[] s_stop = ["the", "of", "and", "to", "with", "that", "be", "have", "a", "in"];

    public static string English(Random rng, int sentences)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < sentences; i++)
        {
            int n = 8 + rng.Next(8);
            for (int w = 0; w < n; w++)
            {
                sb.Append(rng.Next(10) < 4 ? s_stop[rng.Next(s_stop.Length)] : new string(Enumerable.Range(0, 3 + rng.Next(6)).Select(_ => (char)('a' + rng.Next(26))).ToArray()));
                sb.Append(w == n - 1 ? "." : " ");
            }
            sb.Append(i % 3 == 2 ? "\n" : " ");
        }
        return sb.ToString();
    }

    public static string Chinese(Random rng, int sentences, int alphabet = 2000)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < sentences; i++)
        {
            sb.Append(new string(Enumerable.Range(0, 12 + rng.Next(10)).Select(_ => (char)('\u4E00' + rng.Next(alphabet))).ToArray()));
            sb.Append(i % 2 == 0 ? "，" : "。\n");
        }
        return sb.ToString().TrimEnd() + "。";
    }
}
