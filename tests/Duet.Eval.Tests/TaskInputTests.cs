// Bad task input: every defect is one InvalidDataException naming the file and the line (or parquet row) and what is
// wrong, raised while reading, before any model runs. And the readers' details that the reference comparison does
// not reach: CSV quoting, headers, subjects from file and folder names, the split a path names.
using Duet.Eval.Tasks;
using Duet.Model;
using Duet.Tokenizers.Trainer;

namespace Duet.Eval.Tests;

public sealed class TaskInputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("duet-taskin-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private string Write(string relative, string content)
    {
        var path = Path.Combine(_dir, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        return path;
    }

    private static InvalidDataException Fails(string task, string data) =>
        Assert.Throws<InvalidDataException>(() => TaskRunner.Questions(TaskDefinition.Resolve(task), data, null));

    [Theory]
    // MMLU CSV: a row with a column missing; an answer letter past the choices; an empty choice; a headerless row too wide
    [InlineData("mmlu", "test/a_test.csv", "q1,a,b,c,d,A\nq2,a,b,c,D\n", ":2:", "5 columns")]
    [InlineData("mmlu", "test/a_test.csv", "q1,a,b,c,d,A\nq2,a,b,c,d,E\n", ":2:", "names choice 5, but there are 4 choices")]
    [InlineData("mmlu", "test/a_test.csv", "q1,a,\"\",c,d,A\n", ":1:", "choice B is empty")]
    [InlineData("mmlu", "test/a_test.csv", "q1,a,b,c,d,\n", ":1:", "no answer")]
    [InlineData("mmlu", "test/a_test.csv", "q1,a,b,c,d,x1\n", ":1:", "neither a letter")]
    // C-Eval with a header; its test split has no answers (evaluating it is a mistake the message explains)
    [InlineData("ceval", "val/net_val.csv", "id,question,A,B,C,D,answer\n0,问题,甲,乙,丙,丁,\n", ":2:", "C-Eval's test split has none")]
    // JSONL: malformed JSON; an ARC answer key that is no label; Winogrande without a blank or with answer 3
    [InlineData("arc", "ARC-Test.jsonl", "{\"question\": {\"stem\": \"q\", \"choices\": [{\"text\": \"a\", \"label\": \"A\"}]\n", ":1:", "malformed JSON")]
    [InlineData("arc", "ARC-Test.jsonl", "{\"question\": {\"stem\": \"q\", \"choices\": [{\"text\": \"a\", \"label\": \"A\"}, {\"text\": \"b\", \"label\": \"B\"}]}, \"answerKey\": \"E\"}\n", ":1:", "not one of the labels A, B")]
    [InlineData("arc", "ARC-Test.jsonl", "\n{\"question\": {\"stem\": \"q\", \"choices\": [{\"text\": \"a\", \"label\": \"A\"}]}, \"answerKey\": \"A\"}\n", ":2:", "1 choice(s)")]
    [InlineData("winogrande", "dev.jsonl", "{\"sentence\": \"no blank here\", \"option1\": \"a\", \"option2\": \"b\", \"answer\": \"1\"}\n", ":1:", "no blank")]
    [InlineData("winogrande", "dev.jsonl", "{\"sentence\": \"the _ fell\", \"option1\": \"a\", \"option2\": \"b\", \"answer\": \"3\"}\n", ":1:", "must be 1 or 2")]
    [InlineData("hellaswag", "hellaswag_val.jsonl", "{\"activity_label\": \"x\", \"ctx_a\": \"a\", \"ctx_b\": \"b\", \"endings\": [\"e1\", \"e2\"], \"label\": 2}\n", ":1:", "there are 2 choices")]
    [InlineData("hellaswag", "hellaswag_val.jsonl", "{\"activity_label\": \"x\", \"ctx_a\": \"a\", \"endings\": [\"e1\", \"e2\"], \"label\": 0}\n", ":1:", "no ctx_b field")]
    // llama-perplexity's HellaSwag text: not six lines a question
    [InlineData("hellaswag", "hellaswag_val_full.txt", "ctx\n0\ne1\ne2\ne3\n", ":5:", "six lines per question")]
    public void Questions_BadRow_ErrorNamesFileAndLine(string task, string file, string content, string line, string what)
    {
        var path = Write(file, content);
        var e = Fails(task, _dir);
        Assert.Contains(path + line, e.Message);
        Assert.Contains(what, e.Message);
    }

    [Fact]
    public void Questions_TruncatedParquet_ErrorNamesTheFile()
    {
        var good = File.ReadAllBytes(Path.Combine(TaskTests.Data("mmlu-parquet"), "all", "test-00000-of-00001.parquet"));
        var path = Path.Combine(_dir, "all", "test-00000-of-00001.parquet");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, good[..(good.Length / 2)]);
        var e = Fails("mmlu", _dir);
        Assert.Contains(path, e.Message);
        Assert.Contains("not a readable parquet file", e.Message);
    }

    [Fact]
    public void Questions_NoFileOfTheSplit_SaysWhichSplitItLookedFor()
    {
        Write("dev/a_dev.csv", "q,a,b,c,d,A\n");
        var e = Assert.Throws<FileNotFoundException>(() => TaskRunner.Questions(TaskDefinition.Resolve("mmlu"), _dir, null));
        Assert.Contains("split test", e.Message);
    }

    [Fact]
    public void Run_MoreShotsThanTheDevSplitHolds_SaysHowMany()
    {
        Write("test/a_test.csv", "q,a,b,c,d,A\n");
        Write("dev/a_dev.csv", "q,a,b,c,d,A\n");
        var trainer = new BpeTrainer(new BpeTrainerOptions { VocabSize = 300 });
        trainer.AddText("The following are multiple choice questions (with answers) about a. q a b c d Answer: A B C D");
        var tok = trainer.Train();
        using var model = TinyModel.Create(Path.Combine(_dir, "model"), tok.VocabSize, context: 256, tokenizer: tok);
        var task = TaskDefinition.Resolve("mmlu");
        Assert.Equal(1, TaskRunner.Run(task, _dir, model, tok, new TaskOptions { Shots = 1 }).Questions);
        var e = Assert.Throws<InvalidDataException>(() => TaskRunner.Run(task, _dir, model, tok, new TaskOptions { Shots = 2 }));
        Assert.Contains("a_test.csv:1", e.Message);
        Assert.Contains("2 shots asked, but the few-shot split has 1 question(s) of subject a", e.Message);
        Assert.Throws<ArgumentException>(() => TaskRunner.Run(task, Path.Combine(_dir, "test", "a_test.csv"), model, tok, new TaskOptions { Shots = 1 }));
    }

    [Theory]
    [InlineData("{\"name\": \"t\", \"reader\": \"csv\", \"prompt\": \"{q}\"}", "unknown reader \"csv\"")]
    [InlineData("{\"name\": \"t\", \"reader\": \"mc\", \"prompt\": \"{question\"}", "unclosed or empty {")]
    [InlineData("{\"name\": \"t\", \"reader\": \"mc\", \"prompt\": \"{question}\", \"metrics\": [\"f1\"]}", "unknown metric \"f1\"")]
    [InlineData("{\"name\": \"t\", \"reader\": \"mc\", \"prompt\": \"{question}\", \"shots\": 5}", "shots")]
    [InlineData("{\"name\": \"t\", \"reader\": \"mc\", \"prompt\": \"{question}\", \"choices\": \"Partial\"}", "needs the winogrande reader")]
    [InlineData("{\"name\": \"t\", \"reader\": \"mc\"", "my-task.json")]
    public void Definition_Bad_ErrorNamesTheFile(string json, string what)
    {
        var path = Write("my-task.json", json);
        var e = Assert.Throws<InvalidDataException>(() => TaskDefinition.Resolve(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(what, e.Message);
    }

    [Fact]
    public void Definition_TemplateNamesAMissingField_ErrorNamesTheRow()
    {
        var path = Write("t.json", "{\"name\": \"t\", \"reader\": \"mc\", \"prompt\": \"{question} {context}\"}");
        var data = Write("test/a_test.csv", "q,a,b,c,d,A\n");
        var task = TaskDefinition.Resolve(path);
        var doc = TaskRunner.Questions(task, data, null)[0];
        var e = Assert.Throws<InvalidDataException>(() => TaskRunner.Prompts(task, doc, []));
        Assert.Contains(data + ":1", e.Message);
        Assert.Contains("{context}", e.Message);
    }

    [Fact]
    public void Csv_QuotedCommasAndNewlines_SubjectsFromFileAndFolder()
    {
        Write("data/test/high_school_physics_test.csv", "\"What is 1,5 + 1?\nPick one.\",\"2,5\",b,c,d,A\n");
        var docs = TaskRunner.Questions(TaskDefinition.Resolve("mmlu"), Path.Combine(_dir, "data"), null);
        var d = Assert.Single(docs);
        Assert.Equal("What is 1,5 + 1?\nPick one.", d.Fields["question"]);
        Assert.Equal("2,5", d.Choices[0]);
        Assert.Equal("high_school_physics", d.Subject);
        Assert.Equal("high school physics", d.Fields["subject"]);
        Assert.Equal("computer_network", TaskFiles.SubjectOf("/x/computer_network/val-00000-of-00001.parquet", ["val"]));
        Assert.Equal("agronomy", TaskFiles.SubjectOf("/x/test/agronomy.csv", ["test"]));
        Assert.Equal("高中物理", TaskRunner.Questions(TaskDefinition.Resolve("ceval"), TaskTests.Data("ceval"), null)
            .First(q => q.Subject == "high_school_physics").Fields["subject"]);
    }

    [Fact]
    public void Find_TheSplitAsAWordOfThePath_NotAPartOfAWord()
    {
        Write("contest/a_dev.csv", "q,a,b,c,d,A\n");   // "contest" holds "test" but is not the word test
        Write("test/b_test.csv", "q,a,b,c,d,A\n");
        var files = TaskFiles.Find(_dir, ["test"]);
        Assert.Equal([Path.Combine(_dir, "test", "b_test.csv")], files);
    }
}

public sealed class EncodePairTests
{
    private static readonly Duet.Tokenizers.Tokenizer Spm = Duet.Tokenizers.Tokenizer.Load(Path.Combine(Duet.Tests.Repo.Root, "tests", "TestData", "spm-bpe.model"));

    private static LoglikelihoodScorer Scorer(bool bos)
    {
        var folder = Path.Combine(Path.GetTempPath(), $"duet-encodepair-{Environment.ProcessId}-{bos}");
        var model = TinyModel.Create(folder, Spm.VocabSize, context: 64); // memory-mapped: the folder can go
        Directory.Delete(folder, true);
        return new LoglikelihoodScorer(model, Spm, bos);
    }

    /// <summary>The harness's _encode_pair: white space at the context's end moves to the continuation, whose tokens are cut from the whole text's.</summary>
    [Fact]
    public void EncodePair_TrailingSpace_MovesToTheContinuation()
    {
        var s = Scorer(bos: false);
        var r = s.EncodePair("Question: which one?\nAnswer: ", "Paris");
        Assert.Equal(Spm.Encode("Question: which one?\nAnswer:"), r.Context);
        var whole = Spm.Encode("Question: which one?\nAnswer: Paris");
        Assert.Equal(whole[r.Context.Length..], r.Continuation);
        Assert.Equal(whole, r.Context.Concat(r.Continuation));
    }

    [Fact]
    public void EncodePair_EmptyContext_IsThePrefixTokenAlone()
    {
        var s = Scorer(bos: false);
        var r = s.EncodePair("", " Paris");
        Assert.Equal([Spm.BosId], r.Context);
        Assert.Equal(Spm.Encode(" Paris"), r.Continuation);
        var withBos = Scorer(bos: true).EncodePair("答案：", " A");
        Assert.Equal(Spm.BosId, withBos.Context[0]);
        Assert.Throws<ArgumentException>(() => s.EncodePair("context", ""));
    }
}
