// Multiple-choice tasks against the independent reference, tests/reference/tasks_reference.py (the harness's request
// building and scoring re-implemented in Python, python3-sentencepiece on tests/TestData/spm-bpe.model, the float64
// PyTorch LLaMA), on the fixture files in the public layouts (tests/TestData/tasks, made by make_task_fixtures.py and
// make_task_parquet.mjs): the same questions in the same order, the same token ids for every request, every choice's
// log-likelihood within 1e-4 (relative to its size, at least 1e-4 absolute) and every metric's pick the same.
using System.Text.Json;
using Duet.Eval.Tasks;
using Duet.Model;
using Duet.Tests;
using Duet.Tokenizers;

namespace Duet.Eval.Tests;

public sealed class TaskModel : IDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("duet-tasks-").FullName;
    public string Folder => Path.Combine(Dir, "model");
    public string Spm { get; } = Path.Combine(Repo.Root, "tests", "TestData", "spm-bpe.model");
    public LlamaModel Model { get; }
    public Tokenizer Tokenizer { get; }

    public TaskModel()
    {
        Repo.Python(Repo.Reference("make_random_llama.py"), "--preset", "llama3", "--seed", "3", "--std", "0.2", "--vocab-size", "8000",
            "--max-position-embeddings", "512", "--out", Folder);
        Model = LlamaModel.Load(Folder);
        Tokenizer = Tokenizer.Load(Spm);
    }

    public void Dispose()
    {
        Model.Dispose();
        Directory.Delete(Dir, true);
    }
}

public class TaskTests(TaskModel fixture) : IClassFixture<TaskModel>
{
    public static string Data(string folder) => Path.Combine(Repo.Root, "tests", "TestData", "tasks", folder);

    private JsonElement Reference(string task, string folder, int shots, bool bos, int? maxLength)
    {
        var outFile = Path.Combine(fixture.Dir, $"{task}-{folder}-{shots}-{bos}-{maxLength}.json");
        var args = new List<string> { Repo.Reference("tasks_reference.py"), "--model", fixture.Folder, "--spm", fixture.Spm, "--task", task,
            "--data", Data(folder), "--shots", shots.ToString(), "--bos", bos ? "1" : "0", "--out", outFile };
        if (maxLength is int m) args.AddRange(["--max-length", m.ToString()]);
        Repo.Python([.. args]);
        return JsonDocument.Parse(File.ReadAllText(outFile)).RootElement;
    }

    [Theory]
    [InlineData("mmlu", "mmlu", 1, true, null)]              // original headerless CSV, per-subject dev shots, quoted commas, newlines, padded question
    [InlineData("mmlu", "mmlu-parquet", 0, false, null)]     // HF parquet: subject column, choices list, integer answer
    [InlineData("ceval", "ceval", 1, true, null)]            // 答案： and the Chinese subject names; dev has an explanation column
    [InlineData("ceval", "ceval-parquet", 1, false, null)]
    [InlineData("cmmlu", "cmmlu", 1, true, null)]
    [InlineData("arc", "arc", 1, true, null)]                // original JSONL (question.stem, choices [{text,label}]); numeric labels; 3 and 5 choices
    [InlineData("arc", "arc-parquet", 0, true, null)]        // HF choices {text[], label[]} struct
    [InlineData("hellaswag", "hellaswag", 1, true, null)]    // the harness's preprocess: [title], [header], capitalize(), double spaces
    [InlineData("hellaswag", "hellaswag-parquet", 0, false, null)]
    [InlineData("hellaswag", "hellaswag-llamacpp", 0, true, null)]
    [InlineData("winogrande", "winogrande", 1, true, null)]  // partial evaluation: a context per option, the rest of the sentence scored
    [InlineData("winogrande", "winogrande-parquet", 0, true, null)]
    [InlineData("winogrande", "winogrande-llamacpp", 0, false, null)]
    [InlineData("mmlu", "mmlu", 1, true, 40)]                // left truncation to max_length + 1 tokens
    public void Run_FixtureLayouts_MatchTheHarnessReference(string task, string folder, int shots, bool bos, int? maxLength)
    {
        var want = Reference(task, folder, shots, bos, maxLength);
        var definition = TaskDefinition.Resolve(task);
        foreach (bool share in new[] { true, false })
        {
            var got = TaskRunner.Run(definition, Data(folder), fixture.Model, fixture.Tokenizer,
                new TaskOptions { Shots = shots, Bos = bos, ShareContext = share, MaxLength = maxLength });
            var questions = want.GetProperty("questions").EnumerateArray().ToArray();
            Assert.Equal(questions.Length, got.Questions);
            var scorer = new LoglikelihoodScorer(fixture.Model, fixture.Tokenizer, bos);
            for (int q = 0; q < questions.Length; q++)
            {
                var wq = questions[q];
                var gq = got.Details[q];
                Assert.Equal(wq.GetProperty("gold").GetInt32(), gq.Doc.Gold);
                var ctxTokens = wq.GetProperty("context_tokens").EnumerateArray().ToArray();
                var contTokens = wq.GetProperty("continuation_tokens").EnumerateArray().ToArray();
                var lls = wq.GetProperty("lls").EnumerateArray().Select(e => e.GetDouble()).ToArray();
                var greedy = wq.GetProperty("greedy").EnumerateArray().Select(e => e.GetBoolean()).ToArray();
                Assert.Equal(lls.Length, gq.Choices.Length);
                for (int c = 0; c < lls.Length; c++)
                {
                    var request = scorer.EncodePair(gq.Contexts[c], gq.Continuations[c]);
                    Assert.Equal(ctxTokens[c].EnumerateArray().Select(e => e.GetInt32()), request.Context);
                    Assert.Equal(contTokens[c].EnumerateArray().Select(e => e.GetInt32()), request.Continuation);
                    double tolerance = 1e-4 * Math.Max(1, Math.Abs(lls[c]));
                    Assert.True(Math.Abs(gq.Choices[c].Value - lls[c]) <= tolerance,
                        $"{gq.Doc.Where} choice {c} (share {share}): log-likelihood {gq.Choices[c].Value} vs {lls[c]}");
                    Assert.Equal(greedy[c], gq.Choices[c].IsGreedy);
                }
                foreach (var p in wq.GetProperty("picked").EnumerateObject())
                    Assert.True(p.Value.GetInt32() == gq.Picked[p.Name], $"{gq.Doc.Where}: {p.Name} picked {gq.Picked[p.Name]}, the reference {p.Value.GetInt32()}");
            }
            foreach (var m in want.GetProperty("metrics").EnumerateObject())
            {
                Assert.Equal(m.Value.GetProperty("value").GetDouble(), got.Metrics[m.Name].Value, 12);
                Assert.Equal(m.Value.GetProperty("stderr").GetDouble(), got.Metrics[m.Name].Stderr, 12);
            }
        }
    }
}
