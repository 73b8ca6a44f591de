// duet eval chat's two measures. The reply loss, computed by the inference engine over each whole conversation, is
// the loss chat fine-tuning's validation computes with the training model on the same packed reply tokens (two
// independent forward passes); the questions are the first user turns, half English and half Chinese, in file order;
// every greedy reply is counted once, as ended (end-of-turn within the limit) or not, in one language.
using Duet.Model;
using Duet.Tensors.Parallel;
using Duet.Tokenizers.ChatTemplates;
using Duet.Tokenizers.Trainer;
using Duet.Training;
using Duet.Training.Sft;

namespace Duet.Eval.Tests;

public sealed class ChatEvalTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("duet-chateval-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static string Line(string q, string a, string? system = null) => System.Text.Json.JsonSerializer.Serialize(new
    {
        messages = (system is null ? [] : new[] { new { role = "system", content = system } })
            .Concat([new { role = "user", content = q }, new { role = "assistant", content = a }]).ToArray(),
    });

    [Fact]
    public void ReplyLoss_IsFineTuningsValidationLoss_AndQuestionsAreHalfEachLanguage()
    {
        var lines = new List<string>
        {
            Line("What does ls do?", "It lists the files of a folder."), Line("ls 是什么？", "列出文件。"),
            Line("What does cp do?", "It copies files.", system: "Answer briefly."), Line("cp 是什么？", "复制文件。"),
            Line("Was macht rm?", "Es löscht Dateien."), // neither English nor Chinese: not a question
            Line("What does rm do?", "It removes files."), Line("rm 是什么？", "删除文件。"), Line("What does mv do?", "It moves files."),
        };
        var data = Path.Combine(_dir, "chat.jsonl");
        File.WriteAllLines(data, lines);
        var trainer = new BpeTrainer(new BpeTrainerOptions { VocabSize = 300 });
        foreach (var l in lines) trainer.AddText(l);
        var tok = trainer.Train();
        var basePath = Path.Combine(_dir, "base");
        ModelPackage.WriteHfFolder(CanonicalModel.Random(TinyModel.Config(tok.VocabSize, 128) with { Layers = 2 }, 3, tok, std: 0.1f), basePath, Formats.SafeTensors.SafeTensorsDType.F32);

        // The fine-tuning run's validation: every conversation held out (ValidationData), before any step.
        double expected;
        using (var pool = new WorkerPool(2))
        using (var ft = new FineTuner(new FineTuneConfig { Base = basePath, Data = data, ValidationData = data, BatchSize = 2, SeqLen = 128, Steps = 1 }, Path.Combine(_dir, "run"), resume: false, pool))
            expected = ft.Validate();

        var conversations = ChatConversations.Read(data).ToList();
        using var model = LlamaModel.Load(basePath);
        var r = ChatEval.Run(model, tok, conversations, new ChatEvalOptions { Questions = 4, MaxTokens = 8, Slots = 3 });
        Assert.True(Math.Abs(r.ReplyLoss - expected) <= 1e-4 * expected, $"reply loss {r.ReplyLoss} vs fine-tuning's validation {expected}");
        Assert.Equal(lines.Count, r.Conversations);

        var q = ChatEval.Questions(conversations, 4);
        Assert.Equal(["What does ls do?", "ls 是什么？", "What does cp do?", "cp 是什么？"], q.Select(x => x.Question));
        Assert.Equal(["en", "zh", "en", "zh"], q.Select(x => x.Language));
        Assert.Equal(["system", "user"], q[2].Prompt.Select(m => m.Role)); // the system message goes with its question
        Assert.Equal(4, r.Questions);
        Assert.Equal(q.Select(x => x.Question), r.Samples.Select(s => s.Question));
        foreach (var s in r.Samples) Assert.True(s.EndedWithEndOfTurn ? s.Tokens <= 8 : s.Tokens == 8, $"{s.Question}: {s.Tokens} tokens, ended {s.EndedWithEndOfTurn}");
        Assert.Equal(r.Samples.Count(s => s.EndedWithEndOfTurn), r.ByLanguage.Values.Sum(l => l.EndedWithEndOfTurn));
        Assert.Equal(r.Samples.Count(s => s.ReplyLanguage == s.Language), r.ByLanguage.Values.Sum(l => l.InQuestionLanguage));
    }
}
