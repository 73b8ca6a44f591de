// Pre-tokenizers: split a normalized section into the pre-tokens ("words") that BPE encodes one by one.
// Names and semantics follow tokenizer.json's "pre_tokenizer" types as the HF JavaScript port runs them.
using System.Text.Json;
using System.Text.RegularExpressions;
using Duet.Tokenizers.Text;

namespace Duet.Tokenizers.PreTokenizers;

public interface IPreTokenizer
{
    /// <summary>Appends the pre-tokens of <paramref name="text"/>; <paramref name="sectionIndex"/> counts sections between added tokens.</summary>
    void PreTokenize(string text, int sectionIndex, List<string> output);
    void WriteJson(Utf8JsonWriter w);
}

/// <summary>"Sequence": each pre-tokenizer applied to every piece the previous one produced.</summary>
public sealed class SequencePreTokenizer(IReadOnlyList<IPreTokenizer> items) : IPreTokenizer
{
    public IReadOnlyList<IPreTokenizer> Items { get; } = items;
    public void PreTokenize(string text, int sectionIndex, List<string> output)
    {
        List<string> current = [text], next = [];
        foreach (var p in Items)
        {
            next.Clear();
            foreach (var piece in current) p.PreTokenize(piece, sectionIndex, next);
            (current, next) = (next, current);
        }
        output.AddRange(current);
    }
    public void WriteJson(Utf8JsonWriter w)
    {
        w.WriteStartObject(); w.WriteString("type", "Sequence"); w.WriteStartArray("pretokenizers");
        foreach (var p in Items) p.WriteJson(w);
        w.WriteEndArray(); w.WriteEndObject();
    }
}

public enum SplitBehavior { Isolated, Removed }

/// <summary>
/// "Split" on a regex or a literal. The GPT-2 / Llama 3 / Qwen regexes run on <see cref="GptSplitPattern"/>;
/// any other regex runs on .NET's engine, whose \s and \p{..} work on UTF-16 units (see CharClass).
/// </summary>
public sealed class SplitPreTokenizer : IPreTokenizer
{
    public string Pattern { get; }
    public bool IsRegex { get; }
    public SplitBehavior Behavior { get; }
    public bool Invert { get; }
    private readonly GptPatternKind? _fast;
    private readonly Regex _regex;

    public SplitPreTokenizer(string pattern, bool isRegex, SplitBehavior behavior, bool invert)
    {
        Pattern = pattern; IsRegex = isRegex; Behavior = behavior; Invert = invert;
        _fast = isRegex ? GptSplitPattern.Recognize(pattern) : null;
        try
        {
            _regex = new Regex(isRegex ? pattern : Regex.Escape(pattern), RegexOptions.CultureInvariant, TimeSpan.FromSeconds(5));
        }
        catch (ArgumentException e)
        {
            throw new TokenizerFormatException($"Split pre-tokenizer: the regex '{pattern}' is not valid: {e.Message}", e);
        }
    }

    private struct Sink { public string Text; public List<string> Output; }

    public void PreTokenize(string text, int sectionIndex, List<string> output)
    {
        if (_fast is { } kind && !Invert)
        {
            // The GPT patterns match every code point, so Isolated and Removed both give the matches.
            var sink = new Sink { Text = text, Output = output };
            if (Behavior == SplitBehavior.Removed) { output.Clear(); return; }
            GptSplitPattern.Split(kind, text, ref sink, static (ref Sink s, int start, int len) => s.Output.Add(s.Text.Substring(start, len)));
            return;
        }
        int prev = 0;
        foreach (Match m in _regex.Matches(text))
        {
            if (Invert) { if (m.Length > 0) output.Add(m.Value); continue; }
            if (m.Index > prev) output.Add(text[prev..m.Index]);
            if (m.Length > 0 && Behavior == SplitBehavior.Isolated) output.Add(m.Value);
            prev = m.Index + m.Length;
        }
        if (!Invert && prev < text.Length) output.Add(text[prev..]);
    }

    public void WriteJson(Utf8JsonWriter w)
    {
        w.WriteStartObject(); w.WriteString("type", "Split");
        w.WriteStartObject("pattern"); w.WriteString(IsRegex ? "Regex" : "String", Pattern); w.WriteEndObject();
        w.WriteString("behavior", Behavior.ToString()); w.WriteBoolean("invert", Invert); w.WriteEndObject();
    }
}

/// <summary>"ByteLevel": optional GPT-2 split, then every byte of UTF-8 as its printable stand-in.</summary>
public sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : IPreTokenizer
{
    public bool AddPrefixSpace { get; } = addPrefixSpace;
    public bool UseRegex { get; } = useRegex;

    private struct Sink { public string Text; public List<string> Output; }

    public void PreTokenize(string text, int sectionIndex, List<string> output)
    {
        if (AddPrefixSpace && !text.StartsWith(' ')) text = " " + text;
        if (!UseRegex) { output.Add(ByteLevelAlphabet.Map(text)); return; }
        var sink = new Sink { Text = text, Output = output };
        GptSplitPattern.Split(GptPatternKind.Gpt2, text, ref sink,
            static (ref Sink s, int start, int len) => s.Output.Add(ByteLevelAlphabet.Map(s.Text.AsSpan(start, len))));
    }

    public void WriteJson(Utf8JsonWriter w)
    {
        w.WriteStartObject(); w.WriteString("type", "ByteLevel"); w.WriteBoolean("add_prefix_space", AddPrefixSpace);
        w.WriteBoolean("trim_offsets", false); w.WriteBoolean("use_regex", UseRegex); w.WriteEndObject();
    }
}

public enum PrependScheme { Always, First, Never }

/// <summary>
/// "Metaspace": ' ' becomes '▁' and, per the prepend scheme, '▁' is put before the section.
/// The JavaScript port does not split at '▁' even when "split" is true; we follow it, and the
/// tokenizers Duet trains never merge across '▁', where both readings agree.
/// </summary>
public sealed class MetaspacePreTokenizer(char replacement, PrependScheme scheme, bool split) : IPreTokenizer
{
    public char Replacement { get; } = replacement;
    public PrependScheme Scheme { get; } = scheme;
    public bool SplitFlag { get; } = split;

    public void PreTokenize(string text, int sectionIndex, List<string> output)
    {
        var s = text.Replace(' ', Replacement);
        bool prepend = Scheme == PrependScheme.Always || (Scheme == PrependScheme.First && sectionIndex == 0);
        if (prepend && (s.Length == 0 || s[0] != Replacement)) s = Replacement + s;
        output.Add(s);
    }

    public void WriteJson(Utf8JsonWriter w)
    {
        w.WriteStartObject(); w.WriteString("type", "Metaspace"); w.WriteString("replacement", Replacement.ToString());
        w.WriteString("prepend_scheme", Scheme.ToString().ToLowerInvariant()); w.WriteBoolean("split", SplitFlag); w.WriteEndObject();
    }
}

/// <summary>"Digits": each digit (individual_digits) or each run of digits is its own pre-token.</summary>
public sealed class DigitsPreTokenizer(bool individualDigits) : IPreTokenizer
{
    public bool IndividualDigits { get; } = individualDigits;
    public void PreTokenize(string text, int sectionIndex, List<string> output)
    {
        int start = 0;
        for (int i = 0; i < text.Length;)
        {
            int c = CharClass.CodePointAt(text, i, out int l);
            if (!CharClass.IsNumber(c)) { i += l; continue; }
            if (i > start) output.Add(text[start..i]);
            int end = i + l;
            if (!IndividualDigits)
                while (end < text.Length && CharClass.IsNumber(CharClass.CodePointAt(text, end, out int l2))) end += l2;
            output.Add(text[i..end]);
            start = i = end;
        }
        if (start < text.Length) output.Add(text[start..]);
    }
    public void WriteJson(Utf8JsonWriter w)
    {
        w.WriteStartObject(); w.WriteString("type", "Digits"); w.WriteBoolean("individual_digits", IndividualDigits); w.WriteEndObject();
    }
}
