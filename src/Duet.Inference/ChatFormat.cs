// A turn of a conversation, as the engine, the server and the CLI pass it to the chat template.
namespace Duet.Inference;

/// <summary>
/// Role and text of a turn; <see cref="ToolCalls"/> (an assistant's calls) and <see cref="ToolCallId"/> with
/// <see cref="Name"/> (a tool's result) for tool calling.
/// </summary>
public sealed record ChatTurn(string Role, string Content)
{
    public IReadOnlyList<Tools.ToolCall>? ToolCalls { get; init; }
    public string? ToolCallId { get; init; }
    /// <summary>The function whose result a tool turn holds.</summary>
    public string? Name { get; init; }
}
