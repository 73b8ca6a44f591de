// duet eval chat: a chat model on held-out conversations (Duet.Eval.ChatEval): the loss on the replies, masked as
// chat fine-tuning masks it, and greedy replies to N questions (half English, half Chinese): how many end with an
// end-of-turn token within the limit and how many are in the question's language.
using System.CommandLine;
using System.Text.Json;
using Duet.Eval;
using Duet.Inference;
using Duet.Training.Sft;

namespace Duet.Cli.Commands;

internal static class EvalChatCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "a .gguf file or an HF folder with its tokenizer (and chat template)", Required = true };
        var data = new Option<string>("--data", "-d") { Description = "held-out conversations, JSON lines (OpenAI messages or ShareGPT), e.g. data/chat/validation.jsonl", Required = true };
        var lora = ModelCommands.LoraOption();
        var questions = new Option<int>("--questions") { Description = "questions answered greedily, half English and half Chinese (0: only the reply loss)", DefaultValueFactory = _ => 100 };
        var maxTokens = new Option<int>("--max-tokens", "-n") { Description = "the token limit of a reply", DefaultValueFactory = _ => 128 };
        var samples = new Option<int>("--samples") { Description = "print this many replies per language", DefaultValueFactory = _ => 3 };
        var json = new Option<bool>("--json") { Description = "print the result as one JSON line (with every reply)" };
        var threads = ModelCommands.ThreadsOption();
        var cmd = new Command("chat", "A chat model on held-out conversations: the mean loss on the assistant's reply tokens (masked as duet finetune masks them), and greedy replies to questions in English and Chinese: the share ending with end-of-turn within the limit, and the share in the question's language.")
            { model, data, lora, questions, maxTokens, samples, json, threads };
        cmd.SetAction(r =>
        {
            ModelCommands.UseThreads(r.GetValue(threads));
            string dataPath = r.GetRequiredValue(data);
            var conversations = ChatConversations.Read(dataPath).ToList();
            var (m, tok) = ModelLoader.Load(r.GetRequiredValue(model));
            using (m)
            {
                ModelCommands.ApplyLora(m, r.GetValue(lora));
                var clock = System.Diagnostics.Stopwatch.StartNew();
                var result = ChatEval.Run(m, tok, conversations, new ChatEvalOptions { Questions = r.GetValue(questions), MaxTokens = r.GetValue(maxTokens) },
                    (what, done, all) => { if (done == all || done % 25 == 0) Console.Error.WriteLine($"{what} [{done}/{all}] {clock.Elapsed.TotalSeconds:F1} s"); });
                if (r.GetValue(json))
                {
                    Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
                    {
                        ["model"] = r.GetRequiredValue(model), ["data"] = dataPath, ["conversations"] = result.Conversations, ["reply_tokens"] = result.ReplyTokens,
                        ["reply_loss"] = result.ReplyLoss, ["truncated"] = result.Truncated, ["questions"] = result.Questions, ["max_tokens"] = result.MaxTokens,
                        ["ended_share"] = result.EndedShare, ["language_share"] = result.LanguageShare,
                        ["by_language"] = result.ByLanguage.ToDictionary(p => p.Key, p => new { questions = p.Value.Questions, ended = p.Value.EndedWithEndOfTurn, in_language = p.Value.InQuestionLanguage }),
                        ["replies"] = result.Samples.Select(s => new { language = s.Language, question = s.Question, reply = s.Reply, ended = s.EndedWithEndOfTurn, reply_language = s.ReplyLanguage, tokens = s.Tokens }),
                    }, new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
                    return 0;
                }
                Console.WriteLine($"reply loss {result.ReplyLoss:F4} over {result.ReplyTokens} reply tokens of {result.Conversations} conversations" + (result.Truncated > 0 ? $" ({result.Truncated} cut at the context)" : ""));
                if (result.Questions > 0)
                {
                    Console.WriteLine();
                    Console.WriteLine($"| questions | replies ending with end-of-turn within {result.MaxTokens} tokens | replies in the question's language |");
                    Console.WriteLine("|---|---|---|");
                    foreach (var (lang, l) in result.ByLanguage)
                        Console.WriteLine($"| {l.Questions} {lang} | {l.EndedWithEndOfTurn} ({(double)l.EndedWithEndOfTurn / l.Questions:P0}) | {l.InQuestionLanguage} ({(double)l.InQuestionLanguage / l.Questions:P0}) |");
                    Console.WriteLine($"| {result.Questions} all | {result.EndedShare:P1} | {result.LanguageShare:P1} |");
                    foreach (var g in result.Samples.GroupBy(s => s.Language))
                        foreach (var s in g.Take(r.GetValue(samples)))
                            Console.WriteLine($"\n[{s.Language}] {s.Question}\n  -> {s.Reply.ReplaceLineEndings(" ")}{(s.EndedWithEndOfTurn ? "" : " [no end-of-turn]")}");
                }
            }
            return 0;
        });
        return cmd;
    }
}
