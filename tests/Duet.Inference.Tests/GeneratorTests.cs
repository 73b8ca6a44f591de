// Stop tokens, chat prompts, and the one generation path of the command line: `duet generate` and `duet chat` run
// on the InferenceEngine with one slot (as the server does), and a chat turn computes only what it adds.
using Duet.Inference.Serving;
using Duet.Model;
using Duet.Tensors;
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
        var stops = StopTokens.Of(tok);
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

    /// <summary>
    /// `duet generate` runs on a one-slot engine without the batch-invariant kernels: its greedy tokens are those of
    /// LlamaModel.Prefill then Forward token by token (what the command ran before), for every weight format.
    /// </summary>
    [Theory]
    [InlineData(GgmlType.F32)]
    [InlineData(GgmlType.F16)]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    public void OneSlotEngine_Greedy_SameTokensAsPrefillThenForward(GgmlType type)
    {
        using var files = new TinyModelFile();
        using var m = LlamaModel.Load(files.Write(type, TinyModelFile.Config() with { ContextLength = 128 }));
        var tok = ModelPackage.PlaceholderTokenizer(m.Config.Vocab);
        int[] prompt = [.. Enumerable.Range(0, 45).Select(i => (i * 37 + 11) % m.Config.Vocab)]; // more than one 32-token prompt batch
        var s = m.CreateState(128);
        m.Prefill(s, prompt);
        var want = new List<int>();
        for (int i = 0; i < 30; i++)
        {
            int next = Sampler.Argmax(s.Logits);
            if (StopTokens.Of(tok).Contains(next)) break;
            want.Add(next);
            m.Forward(s, next);
        }
        using var engine = new InferenceEngine(m, tok, new EngineOptions { Slots = 1, Context = 128, BatchInvariant = false });
        var got = engine.Submit(new GenerationRequest { Prompt = prompt, MaxTokens = 30, Sampling = SamplingOptions.Greedy, PenalizePrompt = true })
            .ReadBlocking().Select(t => t.Token).ToList();
        Assert.Equal(want, got);
    }

    /// <summary>
    /// Ten turns of a conversation through ChatSession (the loop `duet chat` runs): each turn's prompt starts with the
    /// conversation's tokens as the model saw them, and the engine computes only the tokens the turn adds: the
    /// rendered user turn and the template's glue around it, plus the previous reply's last token when the length
    /// limit cut that reply (a token sampled but never fed). Re-encoding or recomputing the history would show here
    /// as a count that grows with the conversation.
    /// </summary>
    [Fact]
    public void ChatSession_TenTurns_EachComputesOnlyTheNewTurnsTokens()
    {
        using var chat = new ChatModel(1024);
        var (engine, loaded) = (chat.Engine, chat.Tokenizer);
        var session = new ChatSession(engine, "Be brief.");
        var options = new ChatReplyOptions { MaxTokens = 6, Sampling = SamplingOptions.Greedy };
        int computed = 0; // tokens of the conversation whose keys and values are in the slot's cache
        bool cut = false; // the last reply was cut by the length limit: its last token was never fed
        var perTurn = new List<int>();
        for (int turn = 0; turn < 10; turn++)
        {
            string user = turn % 2 == 0 ? $"What is Debian? {turn}" : $"你好，世界 {turn}";
            var prompt = session.PromptFor(user);
            var reply = string.Concat(session.Send(user, options));
            var st = session.LastTurn!;
            Assert.Equal(prompt.Length, st.PromptTokens);
            int added = prompt.Length - computed;
            Assert.Equal(added, st.EvaluatedTokens);
            Assert.Equal(computed, st.CachedTokens);
            // The new tokens are the turn's ChatML text, written out here, plus the previous reply's cut last token.
            if (turn > 0)
            {
                var turnText = "<|im_end|>\n<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n";
                int expected = new PromptFormatter(loaded).EncodeText(turnText).Length + (cut ? 1 : 0);
                Assert.True(added == expected, $"turn {turn}: {added} tokens computed, the turn has {expected}");
            }
            perTurn.Add(added);
            // After the reply the cache holds the prompt and every reply token fed back (all but the last when the limit cut it).
            cut = st.Reason == FinishReason.Length;
            computed = prompt.Length + st.CompletionTokens - (cut ? 1 : 0);
            Assert.Equal(user, session.Messages[^2].Content);
            Assert.Equal(reply, session.Messages[^1].Content);
        }
        Assert.True(computed > perTurn.Skip(1).Max() * 5, $"the conversation grew to {computed} tokens while a turn computed at most {perTurn.Skip(1).Max()}");
    }

    /// <summary>
    /// A conversation longer than the context loses its oldest exchanges (the system turn stays), as Ollama does,
    /// instead of ending: every turn is answered, and a prompt always leaves the reply its room.
    /// </summary>
    [Fact]
    public void ChatSession_LongerThanTheContext_DropsTheOldestExchanges()
    {
        using var chat = new ChatModel(128);
        var engine = chat.Engine;
        var session = new ChatSession(engine, "Be brief.");
        var options = new ChatReplyOptions { MaxTokens = 40, Sampling = SamplingOptions.Greedy };
        for (int turn = 0; turn < 8; turn++)
        {
            string user = $"What is Debian? {turn}";
            var reply = string.Concat(session.Send(user, options));
            var st = session.LastTurn!;
            Assert.True(st.PromptTokens + Math.Min(40, 128 / 4) <= 128, $"turn {turn}: a prompt of {st.PromptTokens} tokens leaves no room");
            Assert.Equal("system", session.Messages[0].Role);
            Assert.Equal(user, session.Messages[^2].Content);
            Assert.Equal(reply, session.Messages[^1].Content);
        }
        Assert.True(session.DroppedMessages >= 2, $"{session.DroppedMessages} messages dropped");
        Assert.DoesNotContain(session.Messages, t => t.Content == "What is Debian? 0");
        Assert.Equal(2 * 8 + 1, session.Messages.Count + session.DroppedMessages);
    }

    /// <summary>A ChatML tokenizer, a tiny Q8_0 model with it, and a one-slot engine of <c>context</c> tokens, as `duet chat` makes them.</summary>
    private sealed class ChatModel : IDisposable
    {
        private readonly TinyModelFile _files = new();
        private readonly LlamaModel _model;
        public InferenceEngine Engine { get; }
        public Tokenizers.Tokenizer Tokenizer { get; }

        public ChatModel(int context)
        {
            var trainer = new BpeTrainer(new BpeTrainerOptions { VocabSize = 400 });
            trainer.AddText("Debian is a free operating system. 自由的操作系统。 The quick brown fox jumps over the lazy dog. 你好，世界！");
            var tok = trainer.Train();
            (_model, Tokenizer) = ModelLoader.Load(_files.Write(GgmlType.Q8_0, TinyModelFile.Config(vocab: tok.VocabSize) with { ContextLength = context }, tok));
            Engine = new InferenceEngine(_model, Tokenizer, new EngineOptions { Slots = 1, Context = context, BatchInvariant = false });
        }

        public void Dispose()
        {
            Engine.Dispose();
            _model.Dispose();
            _files.Dispose();
        }
    }
}
