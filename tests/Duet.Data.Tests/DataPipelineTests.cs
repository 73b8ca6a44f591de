// The whole recipe run: reproducible byte for byte (acceptance 1), bad input counted and never fatal
// (acceptance 5), every drop counted by reason with samples (acceptance 3's data).
using System.Text;
using System.Text.Json;

namespace Duet.Data.Tests;

public sealed class DataPipelineTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("duet-data-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static string English(Random rng, int sentences) => SyntheticText.English(rng, sentences);

    private static string Chinese(Random rng, int sentences) => SyntheticText.Chinese(rng, sentences);

    private string MakeSources()
    {
        var src = Path.Combine(_dir, "src");
        Directory.CreateDirectory(src);
        var rng = new Random(3);
        for (int i = 0; i < 20; i++) File.WriteAllText(Path.Combine(src, $"en{i:D2}.txt"), English(rng, 12));
        for (int i = 0; i < 20; i++) File.WriteAllText(Path.Combine(src, $"zh{i:D2}.txt"), Chinese(rng, 10));
        // an exact duplicate (case and whitespace changed) and a near duplicate (one word changed)
        var en0 = File.ReadAllText(Path.Combine(src, "en00.txt"));
        File.WriteAllText(Path.Combine(src, "en00-copy.txt"), "  " + en0.ToUpperInvariant().Replace(" ", "   ") + "\n");
        var words = File.ReadAllText(Path.Combine(src, "en01.txt")).Split(' ');
        words[words.Length / 2] = "changed";
        File.WriteAllText(Path.Combine(src, "en01-near.txt"), string.Join(' ', words));
        File.WriteAllText(Path.Combine(src, "fr.txt"), "Le système de paquets lit la liste des dépendances et télécharge chacune depuis le miroir choisi. " +
            string.Concat(Enumerable.Repeat("Les mises à jour fonctionnent de la même manière, puis le gestionnaire compare les versions. ", 8)));
        File.WriteAllText(Path.Combine(src, "short.txt"), "Too short.");
        File.WriteAllText(Path.Combine(src, "mixed.html"), "<p>" + English(rng, 8) + "</p><p>" + Chinese(rng, 8) + "</p>");
        File.WriteAllBytes(Path.Combine(src, "binary.dat"), [0, 1, 2, 3]);
        File.WriteAllBytes(Path.Combine(src, "latin1.txt"), [0x63, 0x61, 0x66, 0xE9, 0x20, 0x63, 0x72, 0xE8, 0x6D, 0x65]);
        File.WriteAllText(Path.Combine(src, "lines.jsonl"), "{\"text\": \"" + English(rng, 6).Replace("\n", " ") + "\"}\n{broken\n");
        var recipe = Path.Combine(_dir, "recipe.json");
        File.WriteAllText(recipe, """
            {
              "name": "test",
              "sources": [ { "name": "local", "paths": ["src"] } ],
              "languages": ["en", "zh"],
              "quality": { "minWords": 40, "minHanCharacters": 40 },
              "split": { "validationFraction": 0.1 },
              "shardCharacters": 3000,
              "samplesPerReason": 2
            }
            """);
        return recipe;
    }

    [Fact]
    public void Build_SameRecipeTwice_GivesByteIdenticalOutput_AndCountsEveryDrop()
    {
        var recipe = MakeSources();
        Manifest m1, m2;
        using (var p = new DataPipeline(Recipe.Load(recipe), Path.Combine(_dir, "out1"))) m1 = p.Run(recipe);
        using (var p = new DataPipeline(Recipe.Load(recipe), Path.Combine(_dir, "out2"))) m2 = p.Run(recipe);
        var files1 = Directory.EnumerateFiles(Path.Combine(_dir, "out1"), "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(Path.Combine(_dir, "out1"), f)).Order().ToList();
        var files2 = Directory.EnumerateFiles(Path.Combine(_dir, "out2"), "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(Path.Combine(_dir, "out2"), f)).Order().ToList();
        Assert.Equal(files1, files2);
        Assert.Contains("manifest.json", files1);
        Assert.DoesNotContain(files1, f => f.EndsWith(".tmp", StringComparison.Ordinal));
        foreach (var f in files1) Assert.Equal(File.ReadAllBytes(Path.Combine(_dir, "out1", f)), File.ReadAllBytes(Path.Combine(_dir, "out2", f)));

        var src = m1.Sources["local"];
        Assert.Equal(1, src.Skipped["binary"]);
        Assert.Equal(1, src.Skipped["invalid_utf8"]);
        Assert.Equal(1, src.Skipped["jsonl_bad_line"]);
        Assert.Equal(1, m1.Dropped["dedup.exact"].Documents);
        Assert.Equal(1, m1.Dropped["dedup.near"].Documents);
        Assert.Equal(1, m1.Dropped["language.other"].Documents);        // the French file
        Assert.Equal(1, m1.Dropped["quality.en.too_few_words"].Documents); // short.txt
        long kept = m1.Kept.Values.SelectMany(v => v.Values).Sum(d => d.Documents);
        Assert.Equal(20 + 20 + 1 + 2, kept); // en, zh, the JSONL line, and the mixed page split into en and zh
        Assert.True(m1.Shards.Count > 2, "several shards at 3000 characters each");
        foreach (var shard in m1.Shards)
        {
            var bytes = File.ReadAllBytes(Path.Combine(_dir, "out1", shard.Path));
            Assert.Equal(shard.Sha256, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)));
            foreach (var line in File.ReadLines(Path.Combine(_dir, "out1", shard.Path)))
                Assert.Contains(JsonDocument.Parse(line).RootElement.GetProperty("lang").GetString(), new[] { "en", "zh" });
        }
        var samples = File.ReadAllLines(Path.Combine(_dir, "out1", "dropped.jsonl"));
        // files go in ordinal order ("en01-near.txt" before "en01.txt"): the later of the two is the one dropped
        Assert.Contains(samples, l => l.Contains("\"reason\":\"dedup.near\",\"id\":\"src/en01.txt\"", StringComparison.Ordinal));
    }

    [Fact]
    public void Load_RecipeWithMisspelledThreshold_IsRejected()
    {
        var path = Path.Combine(_dir, "bad.json");
        File.WriteAllText(path, """{ "name": "x", "sources": [ { "name": "s", "paths": ["a"] } ], "quality": { "minWord": 3 } }""");
        var e = Assert.Throws<InvalidDataException>(() => Recipe.Load(path));
        Assert.Contains("minWord", e.Message, StringComparison.Ordinal);
    }
}
