// A restriction on which tokens may come next (JSON schema output). The engine applies it to the logits
// before sampling and feeds it the token sampled.
namespace Duet.Inference.Constrained;

public interface ITokenConstraint
{
    /// <summary>Sets the logits of tokens that cannot continue a valid output to -inf; once complete, only end-of-generation tokens stay.</summary>
    void Apply(Span<float> logits);
    /// <summary>As Apply, knowing how many tokens may still be generated: a constraint can steer to an early valid end.</summary>
    void Apply(Span<float> logits, int remainingTokens) => Apply(logits);
    /// <summary>Advances the state with the sampled token (throws if the token was not allowed).</summary>
    void Accept(int token);
    /// <summary>A whole valid value has been produced.</summary>
    bool IsComplete { get; }
    /// <summary>The output may go on after it is complete (repeated values: parallel tool calls); the engine then ends the reply at an end-of-turn token, not at completion.</summary>
    bool ContinuesAfterComplete => false;
    void Reset();
}
