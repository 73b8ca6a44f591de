// The one exception the GGUF reader throws for a file it cannot use. The message names the problem, the
// metadata key or tensor involved, and the byte offset in the file, so a user can tell a truncated download
// from a writer bug from a hostile file. System.IO.InvalidDataException is sealed, so this derives from
// IOException (as EndOfStreamException does): callers handling "could not read the file" catch it too.
namespace Duet.Formats.Gguf;

public sealed class GgufFormatException : IOException
{
    public GgufFormatException() : base("Invalid GGUF data.") { }

    public GgufFormatException(string message) : base(message) { }

    public GgufFormatException(string message, Exception innerException) : base(message, innerException) { }

    public GgufFormatException(string message, long offset) : base(message) => Offset = offset;

    /// <summary>Byte offset in the file where the problem was found, or -1 when it is not tied to one place.</summary>
    public long Offset { get; } = -1;
}
