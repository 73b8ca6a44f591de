// Token attributes, numbered as SentencePiece's ModelProto.SentencePiece.Type and GGUF's
// tokenizer.ggml.token_type (llama.cpp LLAMA_TOKEN_TYPE_*), so both formats round-trip unchanged.
namespace Duet.Tokenizers.Models;

public enum TokenType
{
    Undefined = 0,
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}
