// duet tokenize / duet detokenize: stdin to stdout, one output line per input line.
// Lines are split on LF only, so a CR stays part of its line; input bytes that are not valid UTF-8
// are tokenized through byte fallback and come back byte for byte from detokenize.
using System.CommandLine;
using System.Text;
using Duet.Tokenizers;

namespace Duet.Cli.Commands;

internal static class TokenizeCommands
{
    public static Option<string> TokenizerOption() => new("--tokenizer", "-t")
    {
        Description = "tokenizer.json, tokenizer.model, a .gguf file, or a folder holding one",
        Required = true,
    };

    public static Command Tokenize()
    {
        var tok = TokenizerOption();
        var pieces = new Option<bool>("--pieces") { Description = "print token strings instead of ids" };
        var addSpecial = new Option<bool>("--add-special") { Description = "add the BOS/EOS tokens the tokenizer's post-processor defines" };
        var parseSpecial = new Option<bool?>("--parse-special")
        {
            Description = "recognise special tokens such as <s> in the text (default: yes for tokenizer.json, no for tokenizer.model and GGUF)",
        };
        var cmd = new Command("tokenize", "Read UTF-8 text from stdin; print each line's token ids separated by spaces (no BOS/EOS).")
        {
            tok, pieces, addSpecial, parseSpecial,
        };
        cmd.SetAction(r =>
        {
            var t = Tokenizer.Load(r.GetRequiredValue(tok));
            bool asPieces = r.GetValue(pieces), add = r.GetValue(addSpecial);
            bool? ps = r.GetValue(parseSpecial);
            using var stdout = new BufferedStream(Console.OpenStandardOutput(), 1 << 16);
            var sb = new StringBuilder();
            foreach (var line in ReadLines(Console.OpenStandardInput()))
            {
                var ids = t.EncodeUtf8(line.Span, add, ps);
                sb.Clear();
                for (int i = 0; i < ids.Length; i++)
                {
                    if (i > 0) sb.Append(' ');
                    if (asPieces) sb.Append(t.IdToToken(ids[i])); else sb.Append(ids[i]);
                }
                sb.Append('\n');
                stdout.Write(Encoding.UTF8.GetBytes(sb.ToString()));
            }
            return 0;
        });
        return cmd;
    }

    public static Command Detokenize()
    {
        var tok = TokenizerOption();
        var skip = new Option<bool>("--skip-special") { Description = "leave special tokens out of the text" };
        var cmd = new Command("detokenize", "Read lines of space-separated token ids from stdin; print the text of each line.") { tok, skip };
        cmd.SetAction(r =>
        {
            var t = Tokenizer.Load(r.GetRequiredValue(tok));
            bool skipSpecial = r.GetValue(skip);
            using var stdout = new BufferedStream(Console.OpenStandardOutput(), 1 << 16);
            int lineNo = 0;
            var ids = new List<int>();
            foreach (var line in ReadLines(Console.OpenStandardInput()))
            {
                lineNo++;
                ids.Clear();
                foreach (var part in Encoding.UTF8.GetString(line.Span).Split(' ', StringSplitOptions.RemoveEmptyEntries))
                {
                    if (!int.TryParse(part, out int id) || id < 0 || id >= t.VocabSize)
                        throw new FormatException($"line {lineNo}: '{part}' is not a token id (0..{t.VocabSize - 1})");
                    ids.Add(id);
                }
                stdout.Write(t.DecodeToBytes(ids.ToArray(), skipSpecial));
                stdout.WriteByte((byte)'\n');
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>Splits a byte stream on LF only; the empty remainder after a final LF is not a line.</summary>
    public static IEnumerable<ReadOnlyMemory<byte>> ReadLines(Stream input)
    {
        var buffer = new byte[1 << 16];
        var line = new MemoryStream();
        int n;
        while ((n = input.Read(buffer, 0, buffer.Length)) > 0)
        {
            int start = 0;
            for (int i = 0; i < n; i++)
            {
                if (buffer[i] != (byte)'\n') continue;
                line.Write(buffer, start, i - start);
                yield return line.ToArray();
                line.SetLength(0);
                start = i + 1;
            }
            line.Write(buffer, start, n - start);
        }
        if (line.Length > 0) yield return line.ToArray();
    }
}
