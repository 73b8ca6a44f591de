// Chat fine-tuning data: the spans the loss is taken on, against Python jinja2's renderings of the real templates
// (tests/reference/sft_spans.py -> tests/TestData/chat_templates/sft_spans.json), the tokens and their mask, and the
// errors of bad conversations (each naming file and line).
using System.Text.Json;
using Duet.Tests;
using Duet.Tokenizers.ChatTemplates;
using Duet.Tokenizers.Trainer;
using Duet.Training.Sft;

namespace Duet.Training.Tests;

public sealed class SftDataTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("duet-sft-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static readonly string Templates = Path.Combine(Repo.Root, "tests", "TestData", "chat_templates");
    private static readonly Lazy<JsonElement> Fixture = new(() => JsonDocument.Parse(File.ReadAllText(Path.Combine(Templates, "sft_spans.json"))).RootElement);

    private sealed class FixedClock(DateTime local) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => new(DateTime.SpecifyKind(local, DateTimeKind.Utc));
        public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
    }

    public static TheoryData<int> Cases() => new(Enumerable.Range(0, Fixture.Value.GetProperty("cases").GetArrayLength()));

    [Theory, MemberData(nameof(Cases))]
    public void Spans_RealTemplates_MatchJinja2(int index)
    {
        var root = Fixture.Value;
        var c = root.GetProperty("cases")[index];
        string name = c.GetProperty("template").GetString()!, conv = c.GetProperty("conversation").GetString()!;
        var clock = new FixedClock(DateTime.Parse(root.GetProperty("strftime_now").GetString()!, System.Globalization.CultureInfo.InvariantCulture));
        var template = ChatTemplate.Parse(File.ReadAllText(Path.Combine(Templates, name))).WithTimeProvider(clock);
        var messages = root.GetProperty("conversations").GetProperty(conv).EnumerateArray()
            .Select(m => new ChatTemplateMessage(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!)).ToList();
        var conversation = new ChatConversation(messages, $"{name}/{conv}");
        var encoder = new SftEncoder(PlaceholderTokenizer, template, c.GetProperty("bos_token").GetString(), c.GetProperty("eos_token").GetString());
        if (c.TryGetProperty("error", out var error))
        {
            var e = Assert.Throws<InvalidDataException>(() => encoder.Spans(conversation));
            Assert.Contains($"{name}/{conv}", e.Message);
            return;
        }
        var want = c.GetProperty("spans").EnumerateArray().Select(s => new SftSpan(s.GetProperty("text").GetString()!, s.GetProperty("train").GetBoolean())).ToList();
        Assert.Equal(want, encoder.Spans(conversation));
        Assert.Equal(c.GetProperty("full").GetString(), string.Concat(want.Select(s => s.Text)));
    }

    private static readonly Duet.Tokenizers.Tokenizer PlaceholderTokenizer = Duet.Model.ModelPackage.PlaceholderTokenizer(300);

    /// <summary>ChatML through a trained bilingual tokenizer: the trained tokens decode to the replies with their end-of-turn marker, and nothing else.</summary>
    [Fact]
    public void Encode_ChatMl_TrainsOnExactlyTheRepliesAndTheirEndOfTurn()
    {
        var trainer = new BpeTrainer(new BpeTrainerOptions { VocabSize = 400 });
        trainer.AddText("What is apt? Debian's package manager. 列出目录内容。 assistant user system");
        var tok = trainer.Train();
        var conversation = ChatConversations.Parse(
            """{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is apt?"},{"role":"assistant","content":"Debian's package manager."},{"role":"user","content":"中文？"},{"role":"assistant","content":"列出目录内容。"}]}""", "x:1");
        var example = new SftEncoder(tok).Encode(conversation);
        Assert.Equal(example.Tokens.Length, example.Train.Length);
        Assert.False(example.Train[0]);
        var trained = new List<string>();
        for (int i = 0; i < example.Tokens.Length;)
        {
            if (!example.Train[i]) { i++; continue; }
            int j = i;
            while (j < example.Tokens.Length && example.Train[j]) j++;
            trained.Add(tok.Decode(example.Tokens.AsSpan(i, j - i)));
            i = j;
        }
        Assert.Equal(["Debian's package manager.<|im_end|>\n", "列出目录内容。<|im_end|>\n"], trained);
        // <|im_end|> is one token: trained where it ends a reply (2), context where it ends the system and user turns (3).
        int imEnd = tok.Encode("<|im_end|>", parseSpecial: true).Single();
        Assert.Equal(2, example.Tokens.Where((t, i) => t == imEnd && example.Train[i]).Count());
        Assert.Equal(3, example.Tokens.Where((t, i) => t == imEnd && !example.Train[i]).Count());
    }

    [Fact]
    public void Read_ShareGpt_MapsRoles()
    {
        var path = Path.Combine(_dir, "sharegpt.jsonl");
        File.WriteAllText(path, """
            {"conversations":[{"from":"system","value":"s"},{"from":"human","value":"q"},{"from":"gpt","value":"a"}]}

            {"conversations":[{"from":"user","value":"q2"},{"from":"assistant","value":"a2"}]}
            """);
        var all = ChatConversations.Read(path).ToList();
        Assert.Equal(2, all.Count);
        Assert.Equal(["system", "user", "assistant"], all[0].Messages.Select(m => m.Role));
        Assert.Equal(path + ":3", all[1].Where);
    }

    [Theory]
    [InlineData("""{"messages":[{"role":"user","content":"q"}]}""", "no assistant turn")]
    [InlineData("""{"messages":[{"role":"assistant","content":"a"},{"role":"user","content":"q"}]}""", "message 0 is assistant where user comes")]
    [InlineData("""{"messages":[{"role":"user","content":"q"},{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}""", "message 1 is user where assistant comes")]
    [InlineData("""{"messages":[{"role":"user","content":"q"},{"role":"system","content":"s"},{"role":"assistant","content":"a"}]}""", "a system message after the first")]
    [InlineData("""{"messages":[{"role":"tool","content":"q"}]}""", "the role \"tool\"")]
    [InlineData("""{"messages":[{"role":"user","content":5}]}""", "no \"content\" string")]
    [InlineData("""{"messages":[{"role":"system","content":"s"}]}""", "without turns")]
    [InlineData("""{"prompt":"q","completion":"a"}""", "neither \"messages\"")]
    [InlineData("""{"messages":[{"role":"user",""", "malformed JSON")]
    public void Read_BadConversation_ErrorNamesFileAndLine(string line, string what)
    {
        var path = Path.Combine(_dir, "bad.jsonl");
        File.WriteAllText(path, """{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}""" + "\n" + line + "\n");
        var e = Assert.Throws<InvalidDataException>(() => ChatConversations.Read(path).ToList());
        Assert.Contains(path + ":2", e.Message);
        Assert.Contains(what, e.Message);
    }

    [Fact]
    public void Spans_TemplateRefusesTheConversation_ErrorSaysWhy()
    {
        // Mistral v0.1's template raises on a system message.
        var template = ChatTemplate.Parse(File.ReadAllText(Path.Combine(Templates, "mistral-7b-instruct-v0.1-original.jinja")));
        var c = ChatConversations.Parse("""{"messages":[{"role":"system","content":"s"},{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}""", "data.jsonl:7");
        var e = Assert.Throws<InvalidDataException>(() => new SftEncoder(PlaceholderTokenizer, template, "<s>", "</s>").Spans(c));
        Assert.Contains("data.jsonl:7: the chat template cannot render this conversation", e.Message);
        Assert.Contains("alternate", e.Message);
    }
}
