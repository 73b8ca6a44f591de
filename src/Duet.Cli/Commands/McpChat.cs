// duet chat --mcp "COMMAND ARGS": Model Context Protocol servers started over stdio (the ModelContextProtocol SDK),
// their tools offered to the model through Duet's IChatClient, and the calls it makes run by Microsoft.Extensions.AI's
// function invocation, each call and result shown on stderr as it happens. --tool-choice required or a tool's name
// constrains the first reply of each turn to a valid call (the decoder follows the tool's schema).
using Duet.Inference;
using Duet.Inference.Serving;
using Microsoft.Extensions.AI;
using ModelContextProtocol.Client;

namespace Duet.Cli.Commands;

internal static class McpChat
{
    /// <summary>"COMMAND ARG 'A B'" as the command and its arguments (single or double quotes group).</summary>
    public static string[] SplitCommand(string spec)
    {
        var parts = new List<string>();
        var current = new System.Text.StringBuilder();
        char quote = '\0';
        bool any = false;
        foreach (char ch in spec)
        {
            if (quote != '\0') { if (ch == quote) quote = '\0'; else current.Append(ch); continue; }
            if (ch is '"' or '\'') { quote = ch; any = true; continue; }
            if (char.IsWhiteSpace(ch)) { if (any || current.Length > 0) { parts.Add(current.ToString()); current.Clear(); any = false; } continue; }
            current.Append(ch);
        }
        if (quote != '\0') throw new ArgumentException($"--mcp \"{spec}\": an unclosed quote");
        if (any || current.Length > 0) parts.Add(current.ToString());
        if (parts.Count == 0) throw new ArgumentException("--mcp needs a command");
        return parts.ToArray();
    }

    public static async Task<int> Run(InferenceEngine engine, string[] servers, string toolChoice, string? system, int maxTokens, SamplingOptions sampling, string[] stop)
    {
        var clients = new List<McpClient>();
        try
        {
            var tools = new List<AITool>();
            foreach (var spec in servers)
            {
                var parts = SplitCommand(spec);
                McpClient client;
                try
                {
                    client = await McpClient.CreateAsync(new StdioClientTransport(new StdioClientTransportOptions
                    {
                        Name = Path.GetFileNameWithoutExtension(parts[0]), Command = parts[0], Arguments = parts[1..],
                    })).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or InvalidOperationException or System.ComponentModel.Win32Exception or TimeoutException)
                {
                    throw new ArgumentException($"--mcp \"{spec}\": the server did not start: {e.Message}", e);
                }
                clients.Add(client);
                foreach (var tool in await client.ListToolsAsync().ConfigureAwait(false))
                {
                    if (tools.Any(t => t.Name == tool.Name)) throw new ArgumentException($"--mcp \"{spec}\": a tool named {tool.Name} is offered twice");
                    tools.Add(tool);
                    Console.Error.WriteLine($"tool {tool.Name} ({client.ServerInfo?.Name ?? parts[0]}): {tool.Description}");
                }
            }
            ChatToolMode mode = toolChoice switch
            {
                "auto" => ChatToolMode.Auto,
                "required" => ChatToolMode.RequireAny,
                "none" => ChatToolMode.None,
                var name when tools.Any(t => t.Name == name) => ChatToolMode.RequireSpecific(name),
                var name => throw new ArgumentException($"--tool-choice {name}: no such tool (the servers offer {string.Join(", ", tools.Select(t => t.Name))})"),
            };
            using var duet = new DuetChatClient(engine, "duet");
            using var chat = new ChatClientBuilder(duet).UseFunctionInvocation().Build();
            var history = new List<ChatMessage>();
            if (!string.IsNullOrEmpty(system)) history.Add(new ChatMessage(ChatRole.System, system));
            var options = new ChatOptions
            {
                Tools = tools, ToolMode = mode, MaxOutputTokens = maxTokens, Temperature = sampling.Temperature, TopP = sampling.TopP, TopK = sampling.TopK,
                Seed = unchecked((long)sampling.Seed), StopSequences = stop,
            };
            Console.Error.WriteLine($"{tools.Count} tools from {clients.Count} MCP servers; tool choice {toolChoice}; an empty line ends the chat");
            while (true)
            {
                Console.Error.Write("> ");
                var line = Console.ReadLine();
                if (string.IsNullOrWhiteSpace(line)) break;
                history.Add(new ChatMessage(ChatRole.User, line));
                var updates = new List<ChatResponseUpdate>();
                await foreach (var u in chat.GetStreamingResponseAsync(history, options).ConfigureAwait(false))
                {
                    updates.Add(u);
                    foreach (var content in u.Contents)
                        switch (content)
                        {
                            case TextContent t: Console.Write(t.Text); break;
                            case FunctionCallContent call:
                                Console.Error.WriteLine($"[call {call.Name}({System.Text.Json.JsonSerializer.Serialize(call.Arguments)})]");
                                break;
                            case FunctionResultContent result:
                                Console.Error.WriteLine($"[result {result.Result}]");
                                break;
                        }
                }
                Console.WriteLine();
                history.AddRange(updates.ToChatResponse().Messages);
            }
            return 0;
        }
        finally
        {
            foreach (var c in clients) await c.DisposeAsync().ConfigureAwait(false);
        }
    }
}
