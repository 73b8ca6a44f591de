// Issue 19, acceptance 2 (in-process): Microsoft.Extensions.AI's UseFunctionInvocation() over DuetChatClient runs a
// tool loop: the random-weight model, required to call (ToolMode.RequireSpecific, constrained to the schema), calls
// the C# function with arguments of the right types; the function runs; its result goes back to the model in the
// next request (seen there by a middleware under the function-invocation layer), which then answers.
using System.Diagnostics;
using Duet.Tests;
using Duet.Tokenizers.Trainer;
using Microsoft.Extensions.AI;

namespace Duet.Inference.Tests;

public sealed class FunctionInvocationTests
{
    /// <summary>Records the messages of each request that reaches the model.</summary>
    private sealed class Recorder(IChatClient inner) : DelegatingChatClient(inner)
    {
        public List<List<ChatMessage>> Requests { get; } = [];

        public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            Requests.Add(messages.ToList());
            return base.GetResponseAsync(messages, options, cancellationToken);
        }

        public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            Requests.Add(messages.ToList());
            return base.GetStreamingResponseAsync(messages, options, cancellationToken);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task UseFunctionInvocation_CallsTheCSharpFunction_AndSendsItsResultBack(bool streaming)
    {
        var trainer = new BpeTrainer(new BpeTrainerOptions { VocabSize = 400 });
        trainer.AddText("Debian is a free operating system. 自由的操作系统。 {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}} <tool_call></tool_call>");
        var tok = trainer.Train();
        using var files = new TinyModelFile();
        var path = files.Write(Tensors.GgmlType.Q8_0, TinyModelFile.Config(vocab: tok.VocabSize) with { ContextLength = 2048 }, tok);
        using var duet = DuetChatClient.Load(path, new Serving.EngineOptions { Slots = 1, Context = 2048 });

        var calls = new List<(string City, int Days)>();
        var weather = AIFunctionFactory.Create((string city, int days) =>
        {
            calls.Add((city, days));
            return $"sunny in {city} for {days} days";
        }, "get_weather", "The weather in a city for some days");
        var recorder = new Recorder(duet);
        using var client = new ChatClientBuilder(recorder).UseFunctionInvocation().Build();
        var options = new ChatOptions
        {
            Tools = [weather], ToolMode = ChatToolMode.RequireSpecific("get_weather"), MaxOutputTokens = 200, Temperature = 1, Seed = 5,
        };
        List<ChatMessage> chat = [new(ChatRole.User, "What is the weather in Paris?")];
        ChatResponse response;
        if (streaming)
        {
            var updates = new List<ChatResponseUpdate>();
            await foreach (var u in client.GetStreamingResponseAsync(chat, options)) updates.Add(u);
            response = updates.ToChatResponse();
        }
        else response = await client.GetResponseAsync(chat, options);

        var (city, days) = Assert.Single(calls);                                  // the function ran once, with typed arguments
        Assert.NotNull(city);
        var call = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().First();
        var result = response.Messages.SelectMany(m => m.Contents).OfType<FunctionResultContent>().Single();
        Assert.Equal(call.CallId, result.CallId);
        Assert.Equal($"sunny in {city} for {days} days", result.Result?.ToString());
        // The model got the call and its result in the next request, and answered after it.
        Assert.True(recorder.Requests.Count >= 2, $"{recorder.Requests.Count} requests");
        Assert.Contains(recorder.Requests[1].SelectMany(m => m.Contents).OfType<FunctionResultContent>(), r => r.CallId == call.CallId);
        Assert.Equal(ChatRole.Assistant, response.Messages[^1].Role);
        // A token limit that cannot hold the shortest call is refused, not cut into a broken call.
        var e = await Assert.ThrowsAsync<ArgumentException>(() => duet.GetResponseAsync(chat, new ChatOptions { Tools = [weather], ToolMode = ChatToolMode.RequireAny, MaxOutputTokens = 20 }));
        Assert.Contains("shortest call", e.Message);
    }

    [Fact]
    public async Task Sample_ToolCalling_RunsTheFunctionTheModelCalls()
    {
        var trainer = new BpeTrainer(new BpeTrainerOptions { VocabSize = 400 });
        trainer.AddText("The weather in Paris. {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}} <tool_call></tool_call>");
        using var files = new TinyModelFile();
        var tok = trainer.Train();
        var path = files.Write(Tensors.GgmlType.Q8_0, TinyModelFile.Config(vocab: tok.VocabSize) with { ContextLength = 2048 }, tok);
        string dll = new[] { "Release", "Debug" }.Select(c => Path.Combine(Repo.Root, "samples", "ToolCalling", "bin", c, "net10.0", "ToolCalling.dll")).First(File.Exists);
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { dll, path, "Weather in Paris?", "--require" }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = await p.StandardOutput.ReadToEndAsync();
        Assert.True(p.WaitForExit(60_000));
        Assert.True(p.ExitCode == 0, await err);
        // (a random-weight model's strings and text may hold line breaks of their own: positions, not lines)
        Assert.StartsWith("[call] get_weather(city: ", output, StringComparison.Ordinal);
        int result = output.IndexOf("\n[result] 22 °C and sunny in ", StringComparison.Ordinal);
        Assert.True(result > 0, output);
        Assert.True(output.IndexOf("\n[assistant] ", result, StringComparison.Ordinal) > result, output); // the answer after the result
    }
}
