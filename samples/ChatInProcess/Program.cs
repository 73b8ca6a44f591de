// Chat with a local model in-process: `dotnet run --project samples/ChatInProcess -- model.gguf`.
// Everything below is the IChatClient any .NET AI application already uses; only Load is Duet's.
using Duet.Inference;
using Microsoft.Extensions.AI;

using IChatClient client = DuetChatClient.Load(args[0]);
List<ChatMessage> history = [new(ChatRole.System, "You are a helpful bilingual assistant. 请用用户的语言回答。")];
var options = new ChatOptions { MaxOutputTokens = 200, Temperature = 0.7f };
while (Console.ReadLine() is { } line && line.Length > 0)
{
    history.Add(new(ChatRole.User, line));
    var reply = "";
    await foreach (var update in client.GetStreamingResponseAsync(history, options))
    {
        Console.Write(update.Text);
        reply += update.Text;
    }
    Console.WriteLine();
    history.Add(new(ChatRole.Assistant, reply));
}
