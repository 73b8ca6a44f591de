// Issue 19, acceptance 1: tool calling through the official OpenAI .NET SDK against a real `duet serve` process. The
// test model's template is ChatML (no tools of its own), so the tools are described in its system prompt and the
// calls read in the Hermes format; under tool_choice "required" or a named function the constrained decoder makes
// the random-weight model's reply a call whose arguments validate against the tool's schema (checked by Python's
// jsonschema over 100 seeded requests); streamed calls are reassembled by the SDK; a second turn carries the call and
// its result.
#pragma warning disable OPENAI001 // Seed is marked experimental in the SDK
using System.ClientModel;
using System.Text.Json;
using Duet.Tests;
using OpenAI;
using OpenAI.Chat;

namespace Duet.Server.Tests;

/// <summary>A server with room for the tools' description in the prompt (2,048 tokens of context; the test tokenizer spends ~900 on it).</summary>
public sealed class ToolServerFixture : IAsyncLifetime
{
    public ServerProcess Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = new ServerProcess(TestModels.LongContextPath, "--parallel", "4", "--ctx", "2048", "--threads", "2");
        await Server.WaitReadyAsync(TimeSpan.FromSeconds(90));
    }

    public Task DisposeAsync()
    {
        Server.Dispose();
        return Task.CompletedTask;
    }
}

public sealed class ToolCallingTests(ToolServerFixture fx) : IClassFixture<ToolServerFixture>
{
    private ChatClient Chat() => new(Path.GetFileNameWithoutExtension(TestModels.LongContextPath), new ApiKeyCredential("unused"),
        new OpenAIClientOptions { Endpoint = new Uri(fx.Server.BaseUri, "/v1"), NetworkTimeout = TimeSpan.FromSeconds(60) });

    private const string WeatherSchema = """
        {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}}, "required": ["city"], "additionalProperties": false}
        """;
    private const string TimeSchema = """{"type": "object", "properties": {"zone": {"type": "string", "enum": ["UTC", "Asia/Shanghai"]}}, "required": ["zone"]}""";

    private static ChatCompletionOptions Options(ChatToolChoice choice, int seed = 1, float temperature = 1f)
    {
        var o = new ChatCompletionOptions { MaxOutputTokenCount = 400, Temperature = temperature, Seed = seed, ToolChoice = choice };
        o.Tools.Add(ChatTool.CreateFunctionTool("get_weather", "Weather in a city", BinaryData.FromString(WeatherSchema)));
        o.Tools.Add(ChatTool.CreateFunctionTool("get_time", "The time in a zone", BinaryData.FromString(TimeSchema)));
        return o;
    }

    private static readonly ChatMessage[] s_question = [new SystemChatMessage("You are Duet."), new UserChatMessage("What is the weather in Paris?")];

    [Fact]
    public async Task Required_HundredSeededRequests_EveryCallValidates()
    {
        var args = new Dictionary<string, List<string>> { ["get_weather"] = [], ["get_time"] = [] };
        var tasks = Enumerable.Range(0, 100).Select(async seed =>
        {
            ChatCompletion c = await Chat().CompleteChatAsync(s_question, Options(ChatToolChoice.CreateRequiredChoice(), seed));
            return c;
        }).ToList();
        int parallel = 0;
        foreach (var c in await Task.WhenAll(tasks))
        {
            Assert.Equal(ChatFinishReason.ToolCalls, c.FinishReason);
            Assert.NotEmpty(c.ToolCalls);
            Assert.Equal(c.ToolCalls.Count, c.ToolCalls.Select(x => x.Id).Distinct().Count());
            if (c.ToolCalls.Count > 1) parallel++;                                       // parallel_tool_calls defaults to true
            foreach (var call in c.ToolCalls)
            {
                Assert.StartsWith("call_", call.Id, StringComparison.Ordinal);
                args[call.FunctionName].Add(call.FunctionArguments.ToString());
            }
        }
        Assert.True(parallel > 0, "no reply made parallel calls");
        var file = Path.Combine(Path.GetTempPath(), $"duet-sdk-toolcalls-{Environment.ProcessId}.json");
        File.WriteAllText(file, JsonSerializer.Serialize(new[]
        {
            new { schema = JsonDocument.Parse(WeatherSchema).RootElement, documents = args["get_weather"] },
            new { schema = JsonDocument.Parse(TimeSchema).RootElement, documents = args["get_time"] },
        }));
        try
        {
            var results = JsonSerializer.Deserialize<string[][]>(Repo.Run("/usr/bin/python3", Repo.Reference("validate_json_schema.py"), file))!;
            Assert.Equal(args.Values.Sum(l => l.Count), results.Sum(r => r.Length));
            Assert.All(results.SelectMany(r => r), r => Assert.Equal("valid", r));
        }
        finally { File.Delete(file); }
        Assert.True(args.Values.All(l => l.Count > 0), $"both tools chosen at some seed: weather {args["get_weather"].Count}, time {args["get_time"].Count}");
    }

    [Fact]
    public async Task ParallelToolCallsFalse_OneCallPerReply_StreamedParallelCallsReassembled()
    {
        for (int seed = 0; seed < 12; seed++)
        {
            var o = Options(ChatToolChoice.CreateRequiredChoice(), seed);
            o.AllowParallelToolCalls = false;
            ChatCompletion c = await Chat().CompleteChatAsync(s_question, o);
            Assert.Single(c.ToolCalls);
        }
        // Streamed, several calls come as deltas with their own index, which the SDK reassembles.
        for (int seed = 0; seed < 40; seed++)
        {
            var byIndex = new SortedDictionary<int, (string? Id, string? Name, System.Text.StringBuilder Args)>();
            await foreach (var u in Chat().CompleteChatStreamingAsync(s_question, Options(ChatToolChoice.CreateRequiredChoice(), seed)))
                foreach (var tc in u.ToolCallUpdates)
                {
                    if (!byIndex.TryGetValue(tc.Index, out var entry)) byIndex[tc.Index] = entry = (null, null, new System.Text.StringBuilder());
                    byIndex[tc.Index] = (entry.Id ?? tc.ToolCallId, entry.Name ?? tc.FunctionName, entry.Args.Append(tc.FunctionArgumentsUpdate?.ToString()));
                }
            if (byIndex.Count < 2) continue;
            ChatCompletion whole = await Chat().CompleteChatAsync(s_question, Options(ChatToolChoice.CreateRequiredChoice(), seed));
            Assert.Equal(whole.ToolCalls.Select(x => (x.FunctionName, x.FunctionArguments.ToString())), byIndex.Values.Select(v => (v.Name ?? "", v.Args.ToString())));
            Assert.Equal(byIndex.Count, byIndex.Values.Select(v => v.Id).Distinct().Count());
            return;
        }
        Assert.Fail("no seed of 40 gave parallel calls");
    }

    [Fact]
    public async Task Named_Streamed_FragmentsReassembledByTheSdk_SameAsWhole()
    {
        var options = Options(ChatToolChoice.CreateFunctionChoice("get_time"), seed: 7);
        ChatCompletion whole = await Chat().CompleteChatAsync(s_question, options);
        var call = Assert.Single(whole.ToolCalls);
        Assert.Equal("get_time", call.FunctionName);
        Assert.Null(whole.Content.FirstOrDefault()?.Text is { Length: > 0 } t ? t : null);

        string? id = null, name = null;
        var argsText = new System.Text.StringBuilder();
        ChatFinishReason? finish = null;
        await foreach (var u in Chat().CompleteChatStreamingAsync(s_question, Options(ChatToolChoice.CreateFunctionChoice("get_time"), seed: 7)))
        {
            foreach (var tc in u.ToolCallUpdates)
            {
                Assert.Equal(0, tc.Index);
                id ??= tc.ToolCallId;
                name ??= tc.FunctionName;
                if (tc.FunctionArgumentsUpdate is { } a) argsText.Append(a.ToString());
            }
            finish ??= u.FinishReason;
        }
        Assert.Equal(ChatFinishReason.ToolCalls, finish);
        Assert.Equal("get_time", name);
        Assert.StartsWith("call_", id, StringComparison.Ordinal);
        Assert.Equal(call.FunctionArguments.ToString(), argsText.ToString()); // the same seed: the same call
    }

    [Fact]
    public async Task SecondTurn_WithTheCallAndItsResult_IsAccepted()
    {
        var firstOptions = Options(ChatToolChoice.CreateFunctionChoice("get_weather"), seed: 3);
        firstOptions.MaxOutputTokenCount = 120; // a short call, so the history fits the context
        ChatCompletion first = await Chat().CompleteChatAsync(s_question, firstOptions);
        var call = Assert.Single(first.ToolCalls);
        ChatMessage[] history = [.. s_question, new AssistantChatMessage(first.ToolCalls), new ToolChatMessage(call.Id, "22 C, sunny")];
        ChatCompletion second = await Chat().CompleteChatAsync(history, Options(ChatToolChoice.CreateAutoChoice(), seed: 3));
        Assert.True(second.FinishReason is ChatFinishReason.Stop or ChatFinishReason.Length or ChatFinishReason.ToolCalls, $"{second.FinishReason}");
        Assert.True(second.Usage.InputTokenCount > first.Usage.InputTokenCount, "the call and its result are in the prompt");
        // tool_choice none: tools given, no call read
        ChatCompletion none = await Chat().CompleteChatAsync(s_question, Options(ChatToolChoice.CreateNoneChoice(), seed: 3));
        Assert.Empty(none.ToolCalls);
    }

    /// <summary>
    /// Issue 19, acceptance 2 (over HTTP): Microsoft.Extensions.AI's OpenAI client pointed at the server, under
    /// UseFunctionInvocation(), calls the C# function the model asks for and sends its result back in the next request.
    /// </summary>
    [Fact]
    public async Task MicrosoftExtensionsAi_OpenAiClient_UseFunctionInvocation_RunsTheLoop()
    {
        var calls = new List<string>();
        var weather = Microsoft.Extensions.AI.AIFunctionFactory.Create((string city, string unit) =>
        {
            calls.Add(city + "|" + unit);
            return $"22 {unit} in {city}";
        }, "get_weather", "Weather in a city");
        var inner = Microsoft.Extensions.AI.OpenAIClientExtensions.AsIChatClient(Chat());
        using var client = Microsoft.Extensions.AI.FunctionInvokingChatClientBuilderExtensions.UseFunctionInvocation(new Microsoft.Extensions.AI.ChatClientBuilder(inner)).Build();
        var options = new Microsoft.Extensions.AI.ChatOptions
        {
            Tools = [weather], ToolMode = Microsoft.Extensions.AI.ChatToolMode.RequireSpecific("get_weather"), MaxOutputTokens = 120, Temperature = 1, Seed = 9,
        };
        var response = await client.GetResponseAsync([new Microsoft.Extensions.AI.ChatMessage(Microsoft.Extensions.AI.ChatRole.User, "Weather in Paris?")], options);
        var args = Assert.Single(calls);
        var contents = response.Messages.SelectMany(m => m.Contents).ToList();
        var call = contents.OfType<Microsoft.Extensions.AI.FunctionCallContent>().First();
        var result = contents.OfType<Microsoft.Extensions.AI.FunctionResultContent>().Single();
        Assert.Equal(call.CallId, result.CallId);
        Assert.Equal($"22 {args.Split('|')[1]} in {args.Split('|')[0]}", result.Result?.ToString());
        Assert.Equal(Microsoft.Extensions.AI.ChatRole.Assistant, response.Messages[^1].Role);
        Assert.DoesNotContain(response.Messages[^1].Contents, c => c is Microsoft.Extensions.AI.FunctionCallContent); // it answered after the result
    }

    [Fact]
    public async Task BadToolRequests_Are400WithTheParameter()
    {
        using var http = new HttpClient { BaseAddress = fx.Server.BaseUri };
        async Task Expect(string body, string param)
        {
            using var r = await http.PostAsync("/v1/chat/completions", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
            var text = await r.Content.ReadAsStringAsync();
            Assert.True((int)r.StatusCode == 400, $"{(int)r.StatusCode}: {text}");
            Assert.Equal(param, JsonDocument.Parse(text).RootElement.GetProperty("error").GetProperty("param").GetString());
        }
        const string msgs = """ "messages": [{"role": "user", "content": "hi"}] """;
        await Expect("{" + msgs + """, "tool_choice": "required"}""", "tool_choice");
        await Expect("{" + msgs + """, "tools": [{"type": "function", "function": {"name": "a"}}], "tool_choice": {"type": "function", "function": {"name": "b"}}}""", "tool_choice");
        await Expect("{" + msgs + """, "tools": [{"type": "retrieval"}]}""", "tools");
        await Expect("{" + msgs + """, "tools": [{"type": "function", "function": {"name": "a", "parameters": {"type": "string", "pattern": "x+"}}}], "tool_choice": "required"}""", "tools");
        await Expect("""{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [{"id": "x", "type": "function", "function": {"name": "a", "arguments": "not json"}}]}]}""",
            "messages[1].tool_calls[0].function.arguments");
        await Expect("""{"messages": [{"role": "tool", "content": "22 C"}]}""", "messages[0].tool_call_id");
    }
}
