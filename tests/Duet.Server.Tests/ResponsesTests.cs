// Issue 19, acceptance 3: the OpenAI Responses API of a real `duet serve` process through the official .NET SDK's
// ResponsesClient: text (whole and streamed, the deltas adding up to the output text), a function call and its output
// in a follow-up through previous_response_id, a json_schema text format, stored responses fetched and deleted.
#pragma warning disable OPENAI001 // the Responses client is marked experimental in the SDK
using System.ClientModel;
using System.Text.Json;
using OpenAI;
using OpenAI.Responses;

namespace Duet.Server.Tests;

public sealed class ResponsesTests(ToolServerFixture fx) : IClassFixture<ToolServerFixture>
{
    private static string Model => Path.GetFileNameWithoutExtension(TestModels.LongContextPath);
    private ResponsesClient Client() => new(new ApiKeyCredential("unused"), new ResponsesClientOptions { Endpoint = new Uri(fx.Server.BaseUri, "/v1"), NetworkTimeout = TimeSpan.FromSeconds(60) });

    private static CreateResponseOptions Options(params ResponseItem[] input) => new(Model, input) { MaxOutputTokenCount = 16, Temperature = 0 };

    /// <summary>"Weather in Paris?" with a get_weather(city) tool, sampled, room for a call.</summary>
    private static CreateResponseOptions WeatherOptions()
    {
        var options = Options(ResponseItem.CreateUserMessageItem("Weather in Paris?"));
        options.MaxOutputTokenCount = 120;
        options.Temperature = 1;
        options.Tools.Add(ResponseTool.CreateFunctionTool("get_weather", BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"""), false, "Weather in a city"));
        return options;
    }
    private static CreateResponseOptions Streamed(CreateResponseOptions o) { o.StreamingEnabled = true; return o; }

    [Fact]
    public async Task Text_WholeAndStreamed_TheSame()
    {
        var options = Options(ResponseItem.CreateUserMessageItem("What is Debian? 你好"));
        options.Instructions = "You are Duet.";
        ResponseResult whole = await Client().CreateResponseAsync(options);
        Assert.StartsWith("resp_", whole.Id, StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(whole.GetOutputText()));
        Assert.True(whole.Usage.OutputTokenCount is > 0 and <= 16);
        Assert.True(whole.Usage.InputTokenCount > 5);

        var streamOptions = Options(ResponseItem.CreateUserMessageItem("What is Debian? 你好"));
        streamOptions.Instructions = "You are Duet.";
        var deltas = new System.Text.StringBuilder();
        ResponseResult? completed = null;
        var kinds = new List<string>();
        int lastSequence = -1;
        await foreach (var u in await Client().CreateResponseStreamingAsync(Streamed(streamOptions)))
        {
            Assert.True(u.SequenceNumber > lastSequence, "sequence numbers increase");
            lastSequence = u.SequenceNumber;
            kinds.Add(u.GetType().Name);
            if (u is StreamingResponseOutputTextDeltaUpdate d) deltas.Append(d.Delta);
            if (u is StreamingResponseCompletedUpdate c) completed = c.Response;
            if (u is StreamingResponseIncompleteUpdate i) completed = i.Response; // the token limit was reached, as OpenAI says it
        }
        Assert.Equal(whole.GetOutputText(), deltas.ToString());
        Assert.Equal(whole.GetOutputText(), completed!.GetOutputText());
        Assert.Equal(whole.Status, completed.Status);
        Assert.Equal("StreamingResponseCreatedUpdate", kinds[0]);
        Assert.Contains(kinds[^1], new[] { "StreamingResponseCompletedUpdate", "StreamingResponseIncompleteUpdate" });
        Assert.Contains("StreamingResponseOutputItemDoneUpdate", kinds);
    }

    [Fact]
    public async Task FunctionCall_ThenItsOutput_ThroughPreviousResponseId()
    {
        var options = WeatherOptions();
        options.ToolChoice = ResponseToolChoice.CreateRequiredChoice();
        options.ParallelToolCallsEnabled = false;
        ResponseResult first = await Client().CreateResponseAsync(options);
        var call = Assert.Single(first.OutputItems.OfType<FunctionCallResponseItem>());
        Assert.Equal("get_weather", call.FunctionName);
        using (var args = JsonDocument.Parse(call.FunctionArguments.ToString())) Assert.Equal(JsonValueKind.String, args.RootElement.GetProperty("city").ValueKind);

        var follow = Options(ResponseItem.CreateFunctionCallOutputItem(call.CallId, "22 C, sunny"));
        follow.PreviousResponseId = first.Id;
        follow.Tools.Add(options.Tools[0]);
        ResponseResult second = await Client().CreateResponseAsync(follow);
        Assert.Equal(first.Id, second.PreviousResponseId);
        Assert.True(second.Usage.InputTokenCount > first.Usage.InputTokenCount, "the first turn, the call and its output are in the prompt");

        // Stored: fetched by id, then deleted.
        ResponseResult fetched = await Client().GetResponseAsync(second.Id);
        Assert.Equal(second.Id, fetched.Id);
        await Client().DeleteResponseAsync(second.Id);
        var e = await Assert.ThrowsAsync<ClientResultException>(() => Client().GetResponseAsync(second.Id));
        Assert.Equal(404, e.Status);
    }

    [Fact]
    public async Task StreamedFunctionCall_ArgumentsDeltaAddUpToTheCall()
    {
        var options = WeatherOptions();
        options.ToolChoice = ResponseToolChoice.CreateFunctionChoice("get_weather");
        var arguments = new System.Text.StringBuilder();
        ResponseResult? completed = null;
        await foreach (var u in await Client().CreateResponseStreamingAsync(Streamed(options)))
        {
            if (u is StreamingResponseFunctionCallArgumentsDeltaUpdate d) arguments.Append(d.Delta.ToString());
            if (u is StreamingResponseCompletedUpdate c) completed = c.Response;
        }
        var call = Assert.Single(completed!.OutputItems.OfType<FunctionCallResponseItem>());
        Assert.Equal(call.FunctionArguments.ToString(), arguments.ToString());
    }

    [Fact]
    public async Task JsonSchemaFormat_OutputValidates()
    {
        var options = Options(ResponseItem.CreateUserMessageItem("A person as JSON"));
        options.MaxOutputTokenCount = 150;
        options.Temperature = 1;
        options.TextOptions = new ResponseTextOptions
        {
            TextFormat = ResponseTextFormat.CreateJsonSchemaFormat("person", BinaryData.FromString("""{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"],"additionalProperties":false}"""), null, true),
        };
        ResponseResult r = await Client().CreateResponseAsync(options);
        using var doc = JsonDocument.Parse(r.GetOutputText());
        Assert.Equal(JsonValueKind.String, doc.RootElement.GetProperty("name").ValueKind);
        Assert.True(doc.RootElement.GetProperty("age").TryGetInt64(out _));
    }
}
