// How the pipeline assigns the text of one section to languages. Documentation is the case it is built for:
// prose in one language with code, command lines and tables between the paragraphs, and (in translated
// manuals) paragraphs left in the original language.
//  - Paragraphs are tagged on their own (LanguageTagger.Tag). Natural-language letters are those of en, zh and
//    mixed paragraphs; "other" paragraphs (code, tables, other languages) have no language of their own here.
//  - Under NaturalShare of natural-language letters: the section is "other".
//  - One language holding all but MinorityShare of the natural-language letters: the whole section is that
//    language, code and tables included (they belong to the prose around them, and the quality rules judge
//    the whole).
//  - Otherwise the section is split: en and zh paragraphs go to their language; a mixed paragraph is split
//    into lines, its English lines to en, and its Chinese lines and the lines that mix both scripts to zh (a
//    line that mixes them is Chinese prose naming English terms: "使用 apt-get 命令安装"); other paragraphs
//    and lines go with the natural-language text before them (or after them, at the start).
// Order is kept within each language; lines of one paragraph stay lines, paragraphs stay paragraphs.
using System.Text;

namespace Duet.Data.LanguageId;

public static class LanguageSplitter
{
    public const double NaturalShare = 0.3, MinorityShare = 0.1;

    /// <summary>The section's text per language, in the order each language first appears.</summary>
    public static List<(string Language, string Text)> Split(string section)
    {
        var paragraphs = section.Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Select(p => (Text: p, Scores: LanguageTagger.Score(p))).Select(p => (p.Text, p.Scores, Lang: LanguageTagger.Tag(p.Scores))).ToList();
        double en = 0, zh = 0, mixed = 0, total = 0;
        foreach (var p in paragraphs)
        {
            total += p.Scores.Letters;
            if (p.Lang == Languages.English) en += p.Scores.Letters;
            else if (p.Lang == Languages.Chinese) zh += p.Scores.Letters;
            else if (p.Lang == Languages.Mixed) mixed += p.Scores.Letters;
        }
        double natural = en + zh + mixed;
        if (total == 0 || natural < NaturalShare * total) return [(Languages.Other, section)];
        if (zh + mixed <= MinorityShare * natural) return [(Languages.English, section)];
        if (en + mixed <= MinorityShare * natural) return [(Languages.Chinese, section)];

        // Units: (language or null for "goes with its neighbour", text, paragraph index).
        var units = new List<(string? Lang, string Text, int Paragraph)>();
        for (int i = 0; i < paragraphs.Count; i++)
        {
            var (text, _, lang) = paragraphs[i];
            if (lang == Languages.Mixed)
                foreach (var line in text.Split('\n'))
                {
                    var l = LanguageTagger.Tag(line);
                    units.Add((l == Languages.English ? Languages.English : l is Languages.Chinese or Languages.Mixed ? Languages.Chinese : null, line, i));
                }
            else units.Add((lang is Languages.English or Languages.Chinese ? lang : null, text, i));
        }
        string? first = units.FirstOrDefault(u => u.Lang is not null).Lang;
        var parts = new List<(string Language, StringBuilder Text, int LastParagraph)>();
        string current = first ?? Languages.Other;
        foreach (var (lang, text, para) in units)
        {
            current = lang ?? current;
            int k = parts.FindIndex(p => p.Language == current);
            if (k < 0) { parts.Add((current, new StringBuilder(text), para)); continue; }
            var (_, sb, last) = parts[k];
            sb.Append(last == para ? "\n" : "\n\n").Append(text);
            parts[k] = (current, sb, para);
        }
        return parts.Select(p => (p.Language, p.Text.ToString())).ToList();
    }
}
