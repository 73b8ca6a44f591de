// Normalizers: the first stage, string to string, applied to each section of text between added tokens.
// Names and semantics follow tokenizer.json's "normalizer" types.
using System.Text;
using System.Text.Json;

namespace Duet.Tokenizers.Normalizers;

public interface INormalizer
{
    string Normalize(string text);
    void WriteJson(Utf8JsonWriter w);
}

/// <summary>"Sequence": each normalizer in order.</summary>
public sealed class SequenceNormalizer(IReadOnlyList<INormalizer> items) : INormalizer
{
    public IReadOnlyList<INormalizer> Items { get; } = items;
    public string Normalize(string text)
    {
        foreach (var n in Items) text = n.Normalize(text);
        return text;
    }
    public void WriteJson(Utf8JsonWriter w)
    {
        w.WriteStartObject(); w.WriteString("type", "Sequence"); w.WriteStartArray("normalizers");
        foreach (var n in Items) n.WriteJson(w);
        w.WriteEndArray(); w.WriteEndObject();
    }
}

/// <summary>"Prepend": puts a fixed string before every section (Llama 2's legacy '▁' dummy prefix).</summary>
public sealed class PrependNormalizer(string prepend) : INormalizer
{
    public string Prepend { get; } = prepend;
    public string Normalize(string text) => Prepend + text;
    public void WriteJson(Utf8JsonWriter w)
    {
        w.WriteStartObject(); w.WriteString("type", "Prepend"); w.WriteString("prepend", Prepend); w.WriteEndObject();
    }
}

/// <summary>"Replace" with a literal pattern (regex patterns are rejected by the loader).</summary>
public sealed class ReplaceNormalizer(string pattern, string content) : INormalizer
{
    public string Pattern { get; } = pattern;
    public string Content { get; } = content;
    public string Normalize(string text) => Pattern.Length == 0 ? text : text.Replace(Pattern, Content, StringComparison.Ordinal);
    public void WriteJson(Utf8JsonWriter w)
    {
        w.WriteStartObject(); w.WriteString("type", "Replace");
        w.WriteStartObject("pattern"); w.WriteString("String", Pattern); w.WriteEndObject();
        w.WriteString("content", Content); w.WriteEndObject();
    }
}

/// <summary>"NFC", "NFD", "NFKC", "NFKD". Escaped bytes (lone surrogates) are left as they are.</summary>
public sealed class UnicodeNormalizer(NormalizationForm form) : INormalizer
{
    public NormalizationForm Form { get; } = form;
    public string Normalize(string text)
    {
        int bad = IndexOfLoneSurrogate(text, 0);
        if (bad < 0) return text.IsNormalized(Form) ? text : text.Normalize(Form);
        // string.Normalize rejects lone surrogates: normalize the valid runs between them.
        var sb = new StringBuilder(text.Length);
        int from = 0;
        while (bad >= 0)
        {
            sb.Append(text.AsSpan(from, bad - from).ToString().Normalize(Form)).Append(text[bad]);
            from = bad + 1;
            bad = IndexOfLoneSurrogate(text, from);
        }
        sb.Append(text[from..].Normalize(Form));
        return sb.ToString();
    }

    private static int IndexOfLoneSurrogate(string s, int from)
    {
        for (int i = from; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { i++; continue; }
            if (char.IsSurrogate(s[i])) return i;
        }
        return -1;
    }

    public string TypeName => Form switch
    {
        NormalizationForm.FormC => "NFC", NormalizationForm.FormD => "NFD",
        NormalizationForm.FormKC => "NFKC", _ => "NFKD",
    };
    public void WriteJson(Utf8JsonWriter w)
    {
        w.WriteStartObject(); w.WriteString("type", TypeName); w.WriteEndObject();
    }
}

/// <summary>"Lowercase".</summary>
public sealed class LowercaseNormalizer : INormalizer
{
    public string Normalize(string text) => text.ToLowerInvariant();
    public void WriteJson(Utf8JsonWriter w)
    {
        w.WriteStartObject(); w.WriteString("type", "Lowercase"); w.WriteEndObject();
    }
}

/// <summary>
/// SentencePiece's own normalizer with the "identity" rule, as in LLaMA, Yi and Mistral tokenizer.model
/// files: optionally removes leading, trailing and repeated spaces, adds the '▁' dummy prefix to
/// non-empty text, and escapes ' ' as '▁' (normalizer.cc). Used by tokenizer.model and GGUF "llama".
/// </summary>
public sealed class SentencePieceNormalizer(bool addDummyPrefix, bool removeExtraWhitespaces, bool escapeWhitespaces = true) : INormalizer
{
    public const char SpaceSymbol = '\u2581';
    public bool AddDummyPrefix { get; } = addDummyPrefix;
    public bool RemoveExtraWhitespaces { get; } = removeExtraWhitespaces;
    public bool EscapeWhitespaces { get; } = escapeWhitespaces;

    public string Normalize(string text)
    {
        if (RemoveExtraWhitespaces)
        {
            var sb = new StringBuilder(text.Length);
            bool pendingSpace = false;
            foreach (char c in text)
            {
                if (c == ' ') { pendingSpace = sb.Length > 0; continue; }
                if (pendingSpace) sb.Append(' ');
                pendingSpace = false;
                sb.Append(c);
            }
            text = sb.ToString();
        }
        if (text.Length == 0) return text;
        if (AddDummyPrefix) text = " " + text;
        return EscapeWhitespaces ? text.Replace(' ', SpaceSymbol) : text;
    }

    // tokenizer.json has no SentencePiece normalizer: the same effect is Prepend('▁') + Replace(' ', '▁').
    public void WriteJson(Utf8JsonWriter w)
    {
        if (RemoveExtraWhitespaces)
            throw new NotSupportedException("tokenizer.json cannot express SentencePiece's remove_extra_whitespaces");
        var items = new List<INormalizer>();
        if (AddDummyPrefix) items.Add(new PrependNormalizer(SpaceSymbol.ToString()));
        if (EscapeWhitespaces) items.Add(new ReplaceNormalizer(" ", SpaceSymbol.ToString()));
        new SequenceNormalizer(items).WriteJson(w);
    }
}
