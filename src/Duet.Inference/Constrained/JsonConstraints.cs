// The constraint for a JSON response (OpenAI response_format json_object / json_schema, ChatOptions.ResponseFormat).
using System.Text.Json;
using Duet.Inference.Serving;

namespace Duet.Inference.Constrained;

public static class JsonConstraints
{
    /// <summary>A constraint whose output parses as JSON and, with <paramref name="schema"/>, validates against it.</summary>
    public static ITokenConstraint Create(InferenceEngine engine, JsonElement? schema) =>
        JsonConstraint.Create(engine.Tokenizer, schema, [.. engine.StopTokens], engine.Model.Config.Vocab);
}
