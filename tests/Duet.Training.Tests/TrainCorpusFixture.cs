// A small real corpus for trainer tests: 400 documents of the shipped bilingual sample (data/sample) run through
// the data pipeline, a 400-token BPE trained on them, and the token shards of `duet data tokenize`.
using System.IO.Compression;
using System.Text.Json;
using Duet.Data;
using Duet.Data.Tokens;
using Duet.Tests;
using Duet.Tokenizers.Loaders;
using Duet.Tokenizers.Trainer;

namespace Duet.Training.Tests;

public sealed class TrainCorpusFixture : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("duet-train-").FullName;
    public string Corpus => Path.Combine(Root, "corpus");
    public string TokenizerPath => Path.Combine(Root, "tokenizer.json");

    public TrainCorpusFixture()
    {
        var texts = new List<string>();
        using (var reader = new StreamReader(new GZipStream(File.OpenRead(Path.Combine(Repo.Root, "data", "sample", "train", "train-00000.jsonl.gz")), CompressionMode.Decompress)))
            for (string? line; texts.Count < 400 && (line = reader.ReadLine()) is not null;)
                texts.Add(line);
        Directory.CreateDirectory(Path.Combine(Root, "src"));
        File.WriteAllLines(Path.Combine(Root, "src", "docs.jsonl"), texts);
        var recipe = Path.Combine(Root, "recipe.json");
        File.WriteAllText(recipe, """
            { "name": "train-test", "sources": [ { "name": "sample", "paths": ["src"] } ],
              "dedup": { "exact": true, "near": false }, "split": { "validationFraction": 0.1 }, "samplesPerReason": 0 }
            """);
        using (var p = new DataPipeline(Recipe.Load(recipe), Corpus)) p.Run(recipe);
        var trainer = new BpeTrainer(new BpeTrainerOptions { VocabSize = 400 });
        foreach (var l in texts) trainer.AddText(JsonDocument.Parse(l).RootElement.GetProperty("text").GetString()!);
        TokenizerJsonWriter.Save(trainer.Train(), TokenizerPath);
        CorpusTokenizer.Load(TokenizerPath).Run(Corpus);
    }

    /// <summary>A config file for a small model on this corpus; returns its path.</summary>
    public string WriteConfig(string name, int steps, int checkpointEvery, string extra = "")
    {
        var path = Path.Combine(Root, name + ".json");
        File.WriteAllText(path, $$"""
            {
              "name": "{{name}}", "data": "corpus", "tokenizer": "tokenizer.json",
              "model": { "dim": 48, "layers": 2, "heads": 4, "kvHeads": 2, "ffn": 96, "tiedEmbeddings": true },
              "batchSize": 4, "seqLen": 32, "microBatches": 2, "steps": {{steps}},
              "optimizer": { "learningRate": 0.003, "minLearningRate": 0.0003, "warmupSteps": 5, "weightDecay": 0.1, "gradClip": 1.0 },
              "evalEvery": 10, "evalWindows": 8, "checkpointEvery": {{checkpointEvery}}, "keepCheckpoints": 2,
              "seed": 7, "threads": 2, "peakGflops": 100{{extra}}
            }
            """);
        return path;
    }

    public void Dispose() => Directory.Delete(Root, true);
}
