// How a chat model does on held-out conversations (duet eval chat): two measures a fine-tune is judged by.
//   Reply loss: the mean negative log-likelihood of the assistant's reply tokens (end-of-turn marker included) given
//     everything before them, the conversations rendered with the model's chat template and masked exactly as chat
//     fine-tuning masks them (SftEncoder), so a base model and its tuned model are scored on the same tokens.
//   Replies: the first user turn of each of N questions (half English, half Chinese by the question's language, in
//     file order) sent as a chat prompt, answered greedily up to a token limit: the share of replies that end with an
//     end-of-turn token within the limit, and the share written in the question's language (LanguageTagger, the
//     corpus pipeline's tagger: a reply counts when it is tagged as the question is).
using Duet.Data.LanguageId;
using Duet.Inference;
using Duet.Inference.Serving;
using Duet.Model;
using Duet.Tokenizers;
using Duet.Tokenizers.ChatTemplates;
using Duet.Training.Sft;

namespace Duet.Eval;

public sealed record ChatEvalOptions
{
    /// <summary>Questions to answer, half English and half Chinese (0: no generation).</summary>
    public int Questions { get; init; } = 100;
    public int MaxTokens { get; init; } = 128;
    /// <summary>Sequences generated at once by the engine.</summary>
    public int Slots { get; init; } = 4;
}

/// <summary>One question and its greedy reply.</summary>
public sealed record ChatReplySample(string Language, string Question, string Reply, bool EndedWithEndOfTurn, string ReplyLanguage, int Tokens);

public sealed record ChatEvalLanguage(int Questions, int EndedWithEndOfTurn, int InQuestionLanguage);

public sealed record ChatEvalResult
{
    public required int Conversations { get; init; }
    public required long ReplyTokens { get; init; }
    public required double ReplyLoss { get; init; }
    /// <summary>Conversations longer than the context, cut (their replies past it not scored).</summary>
    public int Truncated { get; init; }
    public required int MaxTokens { get; init; }
    public required IReadOnlyDictionary<string, ChatEvalLanguage> ByLanguage { get; init; }
    public required IReadOnlyList<ChatReplySample> Samples { get; init; }
    public int Questions => ByLanguage.Values.Sum(l => l.Questions);
    public double EndedShare => Questions == 0 ? double.NaN : (double)ByLanguage.Values.Sum(l => l.EndedWithEndOfTurn) / Questions;
    public double LanguageShare => Questions == 0 ? double.NaN : (double)ByLanguage.Values.Sum(l => l.InQuestionLanguage) / Questions;
}

public static class ChatEval
{
    public static ChatEvalResult Run(LlamaModel model, Tokenizer tokenizer, IReadOnlyList<ChatConversation> conversations, ChatEvalOptions? options = null,
        Action<string, int, int>? progress = null)
    {
        options ??= new ChatEvalOptions();
        if (options.Questions < 0 || options.MaxTokens <= 0 || options.Slots <= 0) throw new ArgumentException("questions must not be negative, the token limit and slots must be positive");
        if (conversations.Count == 0) throw new ArgumentException("no conversations to evaluate");
        var (loss, count, truncated) = ReplyLoss(model, tokenizer, conversations, progress);
        var (byLanguage, samples) = options.Questions > 0 ? Replies(model, tokenizer, conversations, options, progress) : (new Dictionary<string, ChatEvalLanguage>(), []);
        return new ChatEvalResult
        {
            Conversations = conversations.Count, ReplyTokens = count, ReplyLoss = count == 0 ? double.NaN : loss / count, Truncated = truncated,
            MaxTokens = options.MaxTokens, ByLanguage = byLanguage, Samples = samples,
        };
    }

    /// <summary>Summed NLL of the reply tokens and their count, each conversation from an empty cache.</summary>
    private static (double Sum, long Count, int Truncated) ReplyLoss(LlamaModel model, Tokenizer tokenizer, IReadOnlyList<ChatConversation> conversations, Action<string, int, int>? progress)
    {
        var encoder = new SftEncoder(tokenizer);
        int vocab = model.Config.Vocab, ctx = model.Config.ContextLength;
        var scratch = new float[vocab];
        double sum = 0;
        long count = 0;
        int truncated = 0;
        LlamaState? state = null;
        float[] logits = [];
        for (int i = 0; i < conversations.Count; i++)
        {
            var e = encoder.Encode(conversations[i]);
            int n = e.Tokens.Length;
            if (n > ctx) { n = ctx; truncated++; }
            if (state is null || state.Capacity < n) state = model.CreateState(Math.Min(ctx, Math.Max(n, 256)));
            state.Reset();
            if (logits.Length < (long)n * vocab) logits = new float[(long)n * vocab];
            model.Prefill(state, e.Tokens.AsSpan(0, n), logits);
            for (int t = 1; t < n; t++)
                if (e.Train[t])
                {
                    sum -= Perplexity.LogSoftmax(logits.AsSpan((t - 1) * vocab, vocab), e.Tokens[t], scratch);
                    count++;
                }
            progress?.Invoke("reply loss", i + 1, conversations.Count);
        }
        return (sum, count, truncated);
    }

    /// <summary>The questions: first user turns (after any system message) tagged English or Chinese, half of each, in order.</summary>
    public static List<(string Language, IReadOnlyList<ChatTemplateMessage> Prompt, string Question)> Questions(IReadOnlyList<ChatConversation> conversations, int total)
    {
        var picked = new List<(string, IReadOnlyList<ChatTemplateMessage>, string)>();
        var per = new Dictionary<string, int> { [Languages.English] = 0, [Languages.Chinese] = 0 };
        int half = (total + 1) / 2;
        foreach (var c in conversations)
        {
            var m = c.Messages;
            int u = m.Count > 0 && m[0].Role == "system" ? 1 : 0;
            if (u >= m.Count || m[u].Role != "user") continue;
            string lang = LanguageTagger.Tag(m[u].Content);
            if (!per.TryGetValue(lang, out int have) || have >= (lang == Languages.English ? half : total - half)) continue;
            per[lang] = have + 1;
            picked.Add((lang, m.Take(u + 1).ToList(), m[u].Content));
        }
        return picked;
    }

    private static (Dictionary<string, ChatEvalLanguage>, List<ChatReplySample>) Replies(LlamaModel model, Tokenizer tokenizer, IReadOnlyList<ChatConversation> conversations,
        ChatEvalOptions options, Action<string, int, int>? progress)
    {
        var questions = Questions(conversations, options.Questions);
        var formatter = new PromptFormatter(tokenizer);
        int context = Math.Min(model.Config.ContextLength, 2048);
        using var engine = new InferenceEngine(model, tokenizer, new EngineOptions { Slots = options.Slots, Context = context });
        var greedy = new SamplingOptions { Temperature = 0, TopK = 0, TopP = 1, MinP = 0 };
        var samples = new ChatReplySample[questions.Count];
        int done = 0;
        // Submitted a slot's worth at a time, in order; each reply is read to its end.
        for (int start = 0; start < questions.Count; start += options.Slots)
        {
            var batch = new List<(int Index, GenerationStream Stream)>();
            for (int i = start; i < Math.Min(questions.Count, start + options.Slots); i++)
            {
                var prompt = formatter.Encode(questions[i].Prompt.Select(p => new ChatTurn(p.Role, p.Content)).ToList());
                if (prompt.Length + options.MaxTokens > context) throw new ArgumentException($"question {i + 1}'s prompt of {prompt.Length} tokens and {options.MaxTokens} more do not fit the context of {context}");
                batch.Add((i, engine.Submit(new GenerationRequest { Prompt = prompt, MaxTokens = options.MaxTokens, Sampling = greedy })));
            }
            foreach (var (i, stream) in batch)
            {
                var text = new System.Text.StringBuilder();
                int tokens = 0;
                var reader = stream.Tokens;
                while (reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
                    while (reader.TryRead(out var t)) { text.Append(t.Text); tokens++; }
                var result = stream.Result.GetAwaiter().GetResult();
                text.Append(result.TrailingText);
                string reply = text.ToString().Trim();
                var (lang, prompt, question) = questions[i];
                samples[i] = new ChatReplySample(lang, question, reply, result.Reason == FinishReason.Stop, LanguageTagger.Tag(reply), tokens);
                progress?.Invoke("replies", ++done, questions.Count);
            }
        }
        var byLanguage = samples.GroupBy(s => s.Language).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key,
            g => new ChatEvalLanguage(g.Count(), g.Count(s => s.EndedWithEndOfTurn), g.Count(s => s.ReplyLanguage == s.Language)));
        return (byLanguage, samples.ToList());
    }
}
