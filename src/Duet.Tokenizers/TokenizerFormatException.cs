// The one exception a tokenizer loader throws for a file it cannot use: the message names the problem.
namespace Duet.Tokenizers;

public sealed class TokenizerFormatException : FormatException
{
    public TokenizerFormatException(string message) : base(message) { }
    public TokenizerFormatException(string message, Exception inner) : base(message, inner) { }
}
