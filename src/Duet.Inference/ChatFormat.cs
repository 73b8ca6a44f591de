// A turn of a conversation, as the engine, the server and the CLI pass it to the chat template.
namespace Duet.Inference;

public sealed record ChatTurn(string Role, string Content);
