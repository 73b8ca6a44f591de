// Stop tokens and chat prompts.
using Duet.Model;
using Duet.Tokenizers.Trainer;

namespace Duet.Inference.Tests;

public class GeneratorTests
{
    [Fact]
    public void StopTokens_ChatMlVocabulary_StopOnEosAndImEnd()
    {
        // As Yi: config.json names </s> as EOS while ChatML turns end with <|im_end|>; both must stop.
        var trainer = new BpeTrainer(new BpeTrainerOptions { VocabSize = 300 });
        trainer.AddText("hello world, 你好世界");
        var tok = trainer.Train();
        var stops = Generator.StopTokensOf(tok);
        Assert.Contains(tok.TokenToId("</s>")!.Value, stops);
        Assert.Contains(tok.TokenToId("<|im_end|>")!.Value, stops);
        Assert.DoesNotContain(tok.TokenToId("<|im_start|>")!.Value, stops);
    }

    [Fact]
    public void PromptFormatter_ChatMlTemplate_EndsAtTheAssistantTurn()
    {
        var trainer = new BpeTrainer(new BpeTrainerOptions { VocabSize = 300 });
        trainer.AddText("hello world, 你好世界");
        var tok = trainer.Train();
        var text = new PromptFormatter(tok).Render([new ChatTurn("system", "Be brief."), new ChatTurn("user", "你好")]);
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n", text);
    }

    [Fact]
    public void Generate_Greedy_IsDeterministicAndStopsAtMaxTokens()
    {
        var c = new LlamaConfig
        {
            Dim = 32, Layers = 1, Heads = 2, KvHeads = 1, HeadDim = 16, RopeDim = 16, FfnDim = 64, Vocab = 300, ContextLength = 64,
            RopeStyle = Tensors.Kernels.RopeStyle.NeoX,
        };
        var dir = Directory.CreateTempSubdirectory("duet-gen-").FullName;
        try
        {
            var path = Path.Combine(dir, "m.gguf");
            ModelFiles.WriteGguf(ModelFiles.Random(c, 5, std: 0.5f), path, Tensors.GgmlType.F32);
            using var m = LlamaModel.Load(path);
            var tok = ModelFiles.PlaceholderTokenizer(300);
            var gen = new Generator(m, tok);
            var a = new List<int>(); var b = new List<int>();
            _ = gen.Generate([1, 5, 9], 10, SamplingOptions.Greedy, onToken: a.Add).ToList();
            _ = gen.Generate([1, 5, 9], 10, SamplingOptions.Greedy, onToken: b.Add).ToList();
            Assert.Equal(a, b);
            Assert.True(a.Count <= 10);
        }
        finally { Directory.Delete(dir, true); }
    }
}
