// The one exception the chat-template renderer throws: a syntax error (with its position), a template that
// rejected the conversation through raise_exception(...), or a runtime error (undefined value used, type error,
// a limit reached). The server turns RaisedByTemplate errors into a 400 with the template's own message.
namespace Duet.Tokenizers.ChatTemplates;

public sealed class ChatTemplateException : Exception
{
    public ChatTemplateException() : base("chat template error") { }
    public ChatTemplateException(string message) : base(message) { }
    public ChatTemplateException(string message, Exception inner) : base(message, inner) { }

    internal ChatTemplateException(string message, int line, int column, bool raisedByTemplate = false, Exception? inner = null)
        : base(message, inner)
    {
        Line = line;
        Column = column;
        RaisedByTemplate = raisedByTemplate;
    }

    /// <summary>1-based line of the template where the error was found, when known.</summary>
    public int? Line { get; }
    /// <summary>1-based column (in UTF-16 units) of the template where the error was found, when known.</summary>
    public int? Column { get; }
    /// <summary>True when the template itself called raise_exception(message); Message is then exactly that message.</summary>
    public bool RaisedByTemplate { get; }
}
