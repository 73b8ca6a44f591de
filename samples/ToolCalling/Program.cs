// A local model answers with the help of a C# function: `dotnet run --project samples/ToolCalling -- model.gguf "Weather in Paris?"`.
// UseFunctionInvocation() runs the calls the model makes and gives it the results; only Load is Duet's.
using Duet.Inference;
using Microsoft.Extensions.AI;

var weather = AIFunctionFactory.Create((string city) => $"22 °C and sunny in {city}", "get_weather", "The current weather in a city");
using IChatClient client = new ChatClientBuilder(DuetChatClient.Load(args[0])).UseFunctionInvocation().Build();
var options = new ChatOptions { Tools = [weather], MaxOutputTokens = 200, Temperature = 0.2f };
if (args.Length > 2 && args[2] == "--require") options.ToolMode = ChatToolMode.RequireAny; // small models may need telling
var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, args.Length > 1 ? args[1] : "What is the weather in Paris?")], options);
foreach (var message in response.Messages)
    foreach (var content in message.Contents)
        Console.WriteLine(content switch
        {
            FunctionCallContent call => $"[call] {call.Name}({string.Join(", ", call.Arguments?.Select(a => $"{a.Key}: {a.Value}") ?? [])})",
            FunctionResultContent result => $"[result] {result.Result}",
            TextContent text => $"[{message.Role}] {text.Text}",
            _ => null,
        });
