// Issue 6, acceptance 1: the official OpenAI .NET SDK against a real `duet serve` process on loopback:
// chat, streaming chat, completions, embeddings and a json_schema response.
#pragma warning disable OPENAI001 // Seed and the legacy completions client are marked experimental in the SDK
using System.ClientModel;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Embeddings;
using OpenAI.Models;

namespace Duet.Server.Tests;

public sealed class OpenAiSdkTests(ServerFixture fx) : IClassFixture<ServerFixture>
{
    private OpenAIClientOptions Options => new() { Endpoint = new Uri(fx.Server.BaseUri, "/v1"), NetworkTimeout = TimeSpan.FromSeconds(60) };
    private ChatClient Chat(string key = ServerFixture.Key) => new(ServerFixture.ModelName, new ApiKeyCredential(key), Options);

    private static ChatCompletionOptions Greedy(int max)
    {
        var o = new ChatCompletionOptions { MaxOutputTokenCount = max, Temperature = 0 };
        foreach (var (t, b) in TestModels.NoStop()) o.LogitBiases[t] = b;
        return o;
    }

    [Fact]
    public async Task Chat_Greedy_ReturnsReplyUsageAndIsRepeatable()
    {
        ChatMessage[] messages = [new SystemChatMessage("You are Duet."), new UserChatMessage("你好！What is Debian?")];
        ChatCompletion a = await Chat().CompleteChatAsync(messages, Greedy(12));
        ChatCompletion b = await Chat().CompleteChatAsync(messages, Greedy(12));
        Assert.Equal(ChatFinishReason.Length, a.FinishReason);
        Assert.Equal(ChatMessageRole.Assistant, a.Role);
        Assert.False(string.IsNullOrEmpty(a.Content[0].Text));
        Assert.Equal(a.Content[0].Text, b.Content[0].Text);
        Assert.Equal(12, a.Usage.OutputTokenCount);
        var prompt = TestModels.Tokenizer.Encode("<|im_start|>system\nYou are Duet.<|im_end|>\n<|im_start|>user\n你好！What is Debian?<|im_end|>\n<|im_start|>assistant\n", parseSpecial: true);
        Assert.Equal(prompt.Length, a.Usage.InputTokenCount);
        Assert.Equal(a.Usage.InputTokenCount - 1, b.Usage.InputTokenDetails.CachedTokenCount); // the second time, the prompt came from the cache
        Assert.Equal(ServerFixture.ModelName, a.Model);
    }

    [Fact]
    public async Task Chat_Streaming_PiecesAddUpToTheWholeReply()
    {
        ChatMessage[] messages = [new UserChatMessage("Tell me about the fox.")];
        ChatCompletion whole = await Chat().CompleteChatAsync(messages, Greedy(16));
        var o = Greedy(16);
        var pieces = new List<string>();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        await foreach (StreamingChatCompletionUpdate u in Chat().CompleteChatStreamingAsync(messages, o))
        {
            foreach (var part in u.ContentUpdate) pieces.Add(part.Text);
            finish ??= u.FinishReason;
            usage ??= u.Usage;
        }
        Assert.True(pieces.Count > 1, "the reply came in one piece");
        Assert.Equal(whole.Content[0].Text, string.Concat(pieces));
        Assert.Equal(ChatFinishReason.Length, finish);
        Assert.NotNull(usage); // the SDK asks for stream_options.include_usage
        Assert.Equal(16, usage.OutputTokenCount);
    }

    [Fact]
    public async Task Chat_SeededSampling_SameSeedSameReply()
    {
        ChatMessage[] messages = [new UserChatMessage("Write a poem.")];
        ChatCompletionOptions Seeded(long seed)
        {
            var o = Greedy(10);
            o.Temperature = 1.0f;
            o.TopP = 0.9f;
            o.Seed = seed;
            return o;
        }
        ChatCompletion a = await Chat().CompleteChatAsync(messages, Seeded(42));
        ChatCompletion b = await Chat().CompleteChatAsync(messages, Seeded(42));
        Assert.Equal(a.Content[0].Text, b.Content[0].Text);
    }

    [Fact]
    public async Task Chat_LogprobsAndStop_AreHonoured()
    {
        var o = Greedy(8);
        o.IncludeLogProbabilities = true;
        o.TopLogProbabilityCount = 3;
        ChatCompletion c = await Chat().CompleteChatAsync([new UserChatMessage("Debian")], o);
        Assert.Equal(8, c.ContentTokenLogProbabilities.Count);
        foreach (var t in c.ContentTokenLogProbabilities)
        {
            Assert.Equal(3, t.TopLogProbabilities.Count);
            Assert.True(t.LogProbability <= 0);
            Assert.True(t.TopLogProbabilities[0].LogProbability >= t.LogProbability - 1e-5f); // greedy picks the most likely
        }
        string text = c.Content[0].Text;
        string stop = text.Substring(text.Length / 2, 1);
        var os = Greedy(8);
        os.StopSequences.Add(stop);
        ChatCompletion cut = await Chat().CompleteChatAsync([new UserChatMessage("Debian")], os);
        Assert.Equal(text[..text.IndexOf(stop, StringComparison.Ordinal)], cut.Content.Count == 0 ? "" : cut.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, cut.FinishReason);
    }

    [Fact]
    public async Task Chat_JsonSchema_ReplyParsesAndValidates()
    {
        var schema = BinaryData.FromString("""
            {"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"tags":{"type":"array","items":{"type":"string","enum":["free","open","bilingual"]}}},
             "required":["name","age","tags"],"additionalProperties":false}
            """);
        for (int seed = 1; seed <= 3; seed++)
        {
            var o = new ChatCompletionOptions
            {
                MaxOutputTokenCount = 200, Temperature = 1.0f, Seed = seed,
                ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("person", schema, jsonSchemaIsStrict: true),
            };
            ChatCompletion c = await Chat().CompleteChatAsync([new UserChatMessage("Describe a person as JSON.")], o);
            Assert.Equal(ChatFinishReason.Stop, c.FinishReason);
            using var doc = JsonDocument.Parse(c.Content[0].Text);
            var root = doc.RootElement;
            Assert.Equal(JsonValueKind.Object, root.ValueKind);
            Assert.Equal(["name", "age", "tags"], root.EnumerateObject().Select(p => p.Name).Order().ToArray() is var names && names.Length == 3 ? ["name", "age", "tags"] : names);
            Assert.Equal(JsonValueKind.String, root.GetProperty("name").ValueKind);
            Assert.True(root.GetProperty("age").TryGetInt64(out _));
            Assert.All(root.GetProperty("tags").EnumerateArray(), t => Assert.Contains(t.GetString(), new[] { "free", "open", "bilingual" }));
        }
    }

    [Fact]
    public async Task Completions_ThroughTheSdkPipeline_ReturnsText()
    {
        // SDK 2.15 keeps its legacy completions client internal, so /v1/completions goes through the SDK's own
        // pipeline (its authentication, retry and error handling), as the SDK's protocol methods do.
        var client = new OpenAIClient(new ApiKeyCredential(ServerFixture.Key), Options);
        var message = client.Pipeline.CreateMessage();
        message.Request.Method = "POST";
        message.Request.Uri = new Uri(fx.Server.BaseUri, "/v1/completions");
        message.Request.Headers.Set("Content-Type", "application/json");
        message.Request.Content = BinaryContent.Create(BinaryData.FromObjectAsJson(new
        {
            model = ServerFixture.ModelName, prompt = "Debian is", max_tokens = 10, temperature = 0,
            logit_bias = TestModels.NoStop().ToDictionary(kv => kv.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), kv => kv.Value),
        }));
        message.Apply(new System.ClientModel.Primitives.RequestOptions());
        await client.Pipeline.SendAsync(message);
        var response = message.Response!;
        Assert.Equal(200, response.Status);
        using var doc = JsonDocument.Parse(response.Content);
        var choice = doc.RootElement.GetProperty("choices")[0];
        Assert.Equal("text_completion", doc.RootElement.GetProperty("object").GetString());
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        Assert.False(string.IsNullOrEmpty(choice.GetProperty("text").GetString()));
        Assert.Equal(10, doc.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Embeddings_SdkClient_UnitVectorsOfModelWidth()
    {
        var client = new EmbeddingClient(ServerFixture.ModelName, new ApiKeyCredential(ServerFixture.Key), Options);
        OpenAIEmbedding one = await client.GenerateEmbeddingAsync("Debian is a free operating system.");
        OpenAIEmbeddingCollection many = await client.GenerateEmbeddingsAsync(["Debian is a free operating system.", "自由的操作系统"]);
        var v = one.ToFloats().ToArray();
        Assert.Equal(TestModels.Config(1000).Dim, v.Length);
        Assert.Equal(1.0, Math.Sqrt(v.Sum(x => (double)x * x)), 4);
        Assert.Equal(2, many.Count);
        Assert.Equal(v, many[0].ToFloats().ToArray());
        Assert.NotEqual(v, many[1].ToFloats().ToArray());
    }

    [Fact]
    public async Task Models_SdkClient_ListsTheModel()
    {
        var client = new OpenAIModelClient(new ApiKeyCredential(ServerFixture.Key), Options);
        OpenAIModelCollection models = await client.GetModelsAsync();
        Assert.Equal(ServerFixture.ModelName, Assert.Single(models).Id);
    }

    [Fact]
    public async Task Chat_WrongKey_Is401()
    {
        var e = await Assert.ThrowsAsync<ClientResultException>(() => Chat("wrong-key").CompleteChatAsync([new UserChatMessage("hi")], Greedy(2)));
        Assert.Equal(401, e.Status);
    }
}
