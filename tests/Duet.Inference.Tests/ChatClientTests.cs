// The Microsoft.Extensions.AI face of the engine: IChatClient and IEmbeddingGenerator in-process, and the
// samples/ChatInProcess program run as a user would run it.
using System.Diagnostics;
using Duet.Inference.Serving;
using Duet.Tests;
using Duet.Tokenizers.Trainer;
using Microsoft.Extensions.AI;

namespace Duet.Inference.Tests;

public class ChatClientTests
{
    private static (string Path, TinyModelFile Files) ChatModel()
    {
        var trainer = new BpeTrainer(new BpeTrainerOptions { VocabSize = 400 });
        trainer.AddText("Debian is a free operating system. 自由的操作系统。 The quick brown fox jumps over the lazy dog. 你好，世界！");
        var tok = trainer.Train();
        var files = new TinyModelFile();
        return (files.Write(Tensors.GgmlType.Q8_0, TinyModelFile.Config(vocab: tok.VocabSize) with { ContextLength = 128 }, tok), files);
    }

    private static ChatOptions Greedy(int max) => new() { Temperature = 0, MaxOutputTokens = max };

    [Fact]
    public async Task GetResponseAsync_Greedy_SameAsEngineAndStreaming()
    {
        var (path, files) = ChatModel();
        using var _ = files;
        using var client = DuetChatClient.Load(path);
        List<ChatMessage> chat = [new(ChatRole.System, "Be brief."), new(ChatRole.User, "What is Debian? 你好")];
        var response = await client.GetResponseAsync(chat, Greedy(10));
        var request = client.CreateRequest(chat, Greedy(10));
        var direct = await client.Engine.Submit(request).ReadAllAsync();
        Assert.Equal(direct.Text, response.Text);
        var pieces = new List<string>();
        ChatFinishReason? finish = null;
        UsageDetails? usage = null;
        await foreach (var u in client.GetStreamingResponseAsync(chat, Greedy(10)))
        {
            pieces.Add(u.Text);
            finish ??= u.FinishReason;
            usage ??= u.Contents.OfType<UsageContent>().FirstOrDefault()?.Details;
        }
        Assert.Equal(response.Text, string.Concat(pieces));
        Assert.Equal(response.FinishReason, finish);
        Assert.Equal(response.Usage!.OutputTokenCount, usage!.OutputTokenCount);
        Assert.Equal(request.Prompt.Length, response.Usage.InputTokenCount);
        Assert.Equal("duet", client.GetService<ChatClientMetadata>()!.ProviderName);
    }

    [Fact]
    public async Task GetResponseAsync_LongConversation_DropsOldestTurnsToFit()
    {
        var (path, files) = ChatModel();
        using var _ = files;
        using var client = DuetChatClient.Load(path);
        var chat = new List<ChatMessage> { new(ChatRole.System, "Be brief.") };
        for (int i = 0; i < 40; i++) chat.Add(new(i % 2 == 0 ? ChatRole.User : ChatRole.Assistant, $"turn {i}: the quick brown fox"));
        var request = client.CreateRequest(chat, Greedy(16));
        Assert.True(request.Prompt.Length + 16 <= 128);
        var text = client.Tokenizer.Decode(request.Prompt);
        Assert.Contains("Be brief.", text, StringComparison.Ordinal);
        Assert.Contains("turn 39", text, StringComparison.Ordinal);
        Assert.DoesNotContain("turn 0:", text, StringComparison.Ordinal);
        var response = await client.GetResponseAsync(chat, Greedy(16));
        Assert.NotNull(response.FinishReason);
    }

    [Fact]
    public async Task GenerateAsync_Embeddings_UnitVectorsSameAsEngine()
    {
        var (path, files) = ChatModel();
        using var _ = files;
        using var client = DuetChatClient.Load(path);
        using var gen = client.AsEmbeddingGenerator();
        var result = await gen.GenerateAsync(["Debian", "你好"]);
        Assert.Equal(2, result.Count);
        var direct = await client.Engine.EmbedAsync(client.Tokenizer.Encode("Debian", addSpecialTokens: true));
        Assert.Equal(direct, result[0].Vector.ToArray());
        Assert.Equal(1.0, Math.Sqrt(result[1].Vector.ToArray().Sum(v => (double)v * v)), 5);
    }

    [Fact]
    public async Task GetStreamingResponseAsync_ConsumerStopsEarly_FreesTheSlot()
    {
        var (path, files) = ChatModel();
        using var _ = files;
        using var client = DuetChatClient.Load(path);
        await foreach (var u in client.GetStreamingResponseAsync([new(ChatRole.User, "Tell me everything")], new ChatOptions { MaxOutputTokens = 100 }))
            break;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (client.Engine.Metrics.BusySlotCount > 0 && DateTime.UtcNow < deadline) await Task.Delay(10);
        Assert.Equal(0, client.Engine.Metrics.BusySlotCount);
    }

    [Fact]
    public async Task Sample_ChatInProcess_ChatsTwoTurnsWithFewerThan20LinesOfCode()
    {
        var (path, files) = ChatModel();
        using var _ = files;
        var source = Path.Combine(Repo.Root, "samples", "ChatInProcess", "Program.cs");
        int code = File.ReadLines(source).Count(l => l.Trim().Length > 0 && !l.TrimStart().StartsWith("//", StringComparison.Ordinal));
        Assert.True(code < 20, $"{code} lines of code");
        string dll = new[] { "Release", "Debug" }.Select(c => Path.Combine(Repo.Root, "samples", "ChatInProcess", "bin", c, "net10.0", "ChatInProcess.dll")).First(File.Exists);
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add(path);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        p.StandardInput.WriteLine("What is Debian?");
        p.StandardInput.WriteLine("你好");
        p.StandardInput.WriteLine();
        var output = await p.StandardOutput.ReadToEndAsync();
        Assert.True(p.WaitForExit(60_000));
        Assert.True(p.ExitCode == 0, await err);
        Assert.True(output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length >= 2, output);
    }
}
