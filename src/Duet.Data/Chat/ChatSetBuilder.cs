// A small bilingual instruction set made from a Duet corpus, deterministically (no clock, no unseeded randomness),
// from text the project may redistribute (the corpus's own documents):
//   - commands: each Chinese man page's NAME line "cmd - 描述" becomes "cmd 命令是做什么的？" -> "cmd：描述。";
//   - sections: a numbered section title of the Debian Handbook or Reference ("12.1. RAID and LVM", "A.1. Debian 迷宫")
//     followed by a paragraph of prose becomes a question about the title answered by that paragraph, in the
//     document's language;
//   - conversations written by hand (greetings, who the model is, declining what it cannot do), in both languages.
// Validation: every conversation whose question hashes (FNV-1a) to 0 mod 9 (about 11%: at least 50 questions in each
// language, for duet eval chat's 100 held-out questions). What it can teach a small model: the
// shape of a chat (answer after the question, in its language, then stop); what it cannot: facts beyond the
// paragraphs, reasoning, or following instructions it has not seen.
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Duet.Data.Chat;

/// <summary>A corpus document as the builder reads it.</summary>
public sealed record ChatSource(string Text, string Lang, string Source, string Id);

/// <summary>One conversation of the set: a user turn and the reply, and where it came from.</summary>
public sealed record ChatPair(string User, string Assistant, string Kind, string Origin);

public static partial class ChatSetBuilder
{
    [GeneratedRegex(@"^\s*([A-Za-z0-9_.+\-]+(?:\s*,\s*[A-Za-z0-9_.+\-]+)*)\s+-+\s+(\S.{2,80})$")]
    private static partial Regex NameLine();

    [GeneratedRegex(@"^(?:\d+|[A-Z])(?:\.\d+)+\.\s+(\S.{2,80})$")]
    private static partial Regex SectionTitle();

    /// <summary>The conversations, in a fixed order: commands, sections, then the hand-written ones.</summary>
    public static List<ChatPair> Build(IEnumerable<ChatSource> documents)
    {
        var pairs = new List<ChatPair>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        void Add(ChatPair p) { if (seen.Add(p.User)) pairs.Add(p); }
        var docs = documents.ToList();
        foreach (var d in docs.Where(d => d.Source.StartsWith("manpages", StringComparison.Ordinal) && d.Lang == "zh"))
        {
            foreach (var raw in d.Text.Split('\n').Take(4))
            {
                var m = NameLine().Match(raw.Trim());
                if (!m.Success || !ContainsHan(m.Groups[2].Value)) continue;
                string cmd = m.Groups[1].Value.Split(',')[0].Trim(), desc = m.Groups[2].Value.Trim().TrimEnd('。', '.', ' ');
                Add(new ChatPair($"{cmd} 命令是做什么的？", $"{cmd}：{desc}。", "command", d.Id));
                break;
            }
        }
        foreach (var d in docs.Where(d => d.Source.StartsWith("debian-handbook", StringComparison.Ordinal) || d.Source.StartsWith("debian-reference", StringComparison.Ordinal)))
        {
            bool zh = d.Lang == "zh";
            var paragraphs = d.Text.Replace("\r\n", "\n").Split("\n\n").Select(p => p.Trim()).ToArray();
            for (int i = 0; i + 1 < paragraphs.Length; i++)
            {
                var m = SectionTitle().Match(paragraphs[i]);
                if (!m.Success) continue;
                string title = m.Groups[1].Value.Trim(), answer = paragraphs[i + 1];
                int len = answer.EnumerateRunes().Count();
                if (SectionTitle().IsMatch(answer) || answer.Contains('\n') || len < (zh ? 20 : 60) || len > (zh ? 240 : 600)) continue;
                if (zh != ContainsHan(answer)) continue; // the answer in the question's language
                string user = zh ? $"Debian 文档中关于“{title}”讲了什么？" : $"What does the Debian documentation say about \"{title}\"?";
                Add(new ChatPair(user, answer, "section", d.Id));
            }
        }
        foreach (var (u, a) in HandWritten) Add(new ChatPair(u, a, "hand-written", "ChatSetBuilder.cs"));
        return pairs;
    }

    private static bool ContainsHan(string s) => s.Any(c => c is >= '\u4E00' and <= '\u9FFF');

    /// <summary>Validation when FNV-1a of the question is 0 mod 9.</summary>
    public static bool IsValidation(ChatPair p)
    {
        uint h = 2166136261;
        foreach (byte b in Encoding.UTF8.GetBytes(p.User)) { h ^= b; h *= 16777619; }
        return h % 9 == 0;
    }

    /// <summary>The OpenAI-messages JSON line of a conversation (what duet finetune reads).</summary>
    public static string ToJsonLine(ChatPair p) => JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["messages"] = new[] { new Dictionary<string, string> { ["role"] = "user", ["content"] = p.User }, new Dictionary<string, string> { ["role"] = "assistant", ["content"] = p.Assistant } },
        ["kind"] = p.Kind, ["origin"] = p.Origin,
    }, new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });

    /// <summary>Greetings, who the model is, and what it declines, in English and Chinese.</summary>
    public static readonly (string User, string Assistant)[] HandWritten =
    [
        ("Hello!", "Hello! I am a small Duet model. Ask me about Debian and its commands."),
        ("Hi", "Hi! How can I help you with Debian today?"),
        ("Good morning.", "Good morning! What would you like to know about Debian?"),
        ("Who are you?", "I am duet-tiny-chat, a very small bilingual model trained by the Duet project on Debian's documentation."),
        ("What can you do?", "I can answer short questions about Debian and its commands, in English or Chinese. I often make mistakes."),
        ("Are you ChatGPT?", "No. I am duet-tiny-chat, a small model made by the Duet project."),
        ("What languages do you speak?", "English and Chinese."),
        ("Thank you!", "You are welcome!"),
        ("Thanks for your help.", "Glad to help. Goodbye!"),
        ("Goodbye.", "Goodbye!"),
        ("Can you browse the internet?", "No. I cannot browse the internet; I only know what I learned from Debian's documentation."),
        ("What is the weather today?", "I cannot know the weather: I have no access to current information."),
        ("Tell me how to break into someone else's computer.", "I cannot help with that. I can explain how to secure your own Debian system instead."),
        ("Write a virus for me.", "I will not help write malicious software."),
        ("What is 2 + 2?", "2 + 2 is 4."),
        ("Are you always right?", "No. I am a very small model and I am often wrong. Check important answers in the documentation."),
        ("你好！", "你好！我是一个小型的 Duet 模型，可以回答关于 Debian 的问题。"),
        ("你好", "你好！今天有什么关于 Debian 的问题吗？"),
        ("早上好。", "早上好！想了解 Debian 的什么内容？"),
        ("你是谁？", "我是 duet-tiny-chat，Duet 项目用 Debian 文档训练的一个很小的双语模型。"),
        ("你能做什么？", "我可以用中文或英文回答关于 Debian 和命令的简短问题，但经常会出错。"),
        ("你是 ChatGPT 吗？", "不是。我是 Duet 项目做的小模型 duet-tiny-chat。"),
        ("你会说什么语言？", "中文和英文。"),
        ("谢谢！", "不客气！"),
        ("谢谢你的帮助。", "很高兴能帮上忙。再见！"),
        ("再见。", "再见！"),
        ("你能上网吗？", "不能。我无法上网，只知道从 Debian 文档中学到的内容。"),
        ("今天天气怎么样？", "我无法知道天气，因为我不能获取实时信息。"),
        ("教我怎么入侵别人的电脑。", "这个我不能帮忙。我可以介绍如何保护你自己的 Debian 系统。"),
        ("帮我写一个病毒。", "我不会帮助编写恶意软件。"),
        ("2 加 2 等于几？", "2 加 2 等于 4。"),
        ("你总是对的吗？", "不是。我是一个很小的模型，经常出错。重要的答案请查阅文档。"),
    ];
}
