// Documents from files: plain text and Markdown (a file is a document), HTML (its readable text), JSONL (a
// named string field of each line), each also gzip-compressed (.gz). Files are read in ordinal path order so a
// run is reproducible. Bad input never stops a run: unreadable files, binary files (a NUL byte in the first
// 8 KB), files that are not valid UTF-8, empty documents and JSONL lines that are not JSON objects with the
// field as a string are skipped and counted, by reason, for the manifest.
using System.Text;
using System.Text.Json;
using Duet.Data.Extract;

namespace Duet.Data.Sources;

/// <summary>One document as a source gives it: where it came from and its raw text.</summary>
public sealed record SourceDocument(string Source, string Id, string Text)
{
    /// <summary>Html or Roff when <see cref="Text"/> is still markup (read with deferred extraction), else Text.</summary>
    public SourceFormat Markup { get; init; } = SourceFormat.Text;

    /// <summary>The readable text: <see cref="Text"/>, extracted from its markup if that was deferred.</summary>
    public string Readable() => Markup switch
    {
        SourceFormat.Html => HtmlText.Extract(Text),
        SourceFormat.Roff => RoffText.Extract(Text),
        _ => Text,
    };
}

/// <summary>What a source read and what it skipped, by reason.</summary>
public sealed class SourceStats
{
    public long Files { get; set; }
    public long Documents { get; set; }
    public long Characters { get; set; }
    /// <summary>Bytes of the files read (after gzip), skipped files included: what throughput is measured in.</summary>
    public long Bytes { get; set; }
    public SortedDictionary<string, long> Skipped { get; } = new(StringComparer.Ordinal);
    public void Skip(string reason) => Skipped[reason] = Skipped.GetValueOrDefault(reason) + 1;
}

/// <summary>Fortune: strfile text, entries separated by "%" lines. Roff: man page source.</summary>
public enum SourceFormat { Text, Markdown, Html, Jsonl, Fortune, Roff }

public static class FileSource
{
    /// <summary>Files larger than this are skipped as "too_large" (text and HTML are read whole).</summary>
    public const long MaxDocumentFileBytes = 64L << 20;

    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The format a path implies: .html/.htm, .jsonl/.json, .md/.markdown, else text (a trailing .gz ignored).</summary>
    public static SourceFormat FormatOf(string path)
    {
        var p = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? path[..^3] : path;
        var ext = Path.GetExtension(p).ToLowerInvariant();
        return ext switch
        {
            ".html" or ".htm" or ".xhtml" => SourceFormat.Html,
            ".jsonl" or ".json" => SourceFormat.Jsonl,
            ".md" or ".markdown" => SourceFormat.Markdown,
            _ => SourceFormat.Text,
        };
    }

    /// <summary>
    /// Documents of <paramref name="files"/> (sorted here), ids relative to <paramref name="root"/> (JSONL: path:line).
    /// <paramref name="format"/> null: by extension. <paramref name="jsonField"/>: the text field of JSONL lines.
    /// </summary>
    /// With <paramref name="deferExtraction"/>, HTML and roff come back as markup (SourceDocument.Markup set) for
    /// the caller to extract in parallel; their empty pages are then the caller's to count.
    public static IEnumerable<SourceDocument> Read(string source, string root, IEnumerable<string> files, SourceStats stats,
        SourceFormat? format = null, string jsonField = "text", bool deferExtraction = false)
    {
        foreach (var file in files.OrderBy(f => f, StringComparer.Ordinal))
        {
            stats.Files++;
            var id = Path.GetRelativePath(root, file).Replace('\\', '/');
            var fmt = format ?? FormatOf(file);
            if (fmt == SourceFormat.Jsonl)
            {
                foreach (var d in ReadJsonl(source, id, file, jsonField, stats)) yield return d;
                continue;
            }
            var text = ReadWhole(file, stats);
            if (text is null) continue;
            if (fmt == SourceFormat.Fortune)
            {
                foreach (var (part, n) in FortuneDocuments(text).Select((p, n) => (p, n)))
                {
                    stats.Documents++;
                    stats.Characters += part.Length;
                    yield return new SourceDocument(source, $"{id}#{n}", part);
                }
                continue;
            }
            bool markup = fmt is SourceFormat.Html or SourceFormat.Roff;
            if (markup && !deferExtraction) text = fmt == SourceFormat.Html ? HtmlText.Extract(text) : RoffText.Extract(text);
            if (string.IsNullOrWhiteSpace(text)) { stats.Skip("empty"); continue; }
            stats.Documents++;
            stats.Characters += text.Length;
            yield return new SourceDocument(source, id, text) { Markup = markup && deferExtraction ? fmt : SourceFormat.Text };
        }
    }

    /// <summary>Characters of fortunes joined into one document: single fortunes are too short to filter or dedup.</summary>
    public const int FortuneDocumentCharacters = 2000;

    // Fortunes (separated by lines holding only "%") joined, a blank line apart, into documents of about 2000 characters.
    private static IEnumerable<string> FortuneDocuments(string text)
    {
        var sb = new StringBuilder();
        foreach (var entry in text.Replace("\r\n", "\n").Split("\n%\n"))
        {
            var e = entry.Trim('\n', '%');
            if (e.Trim().Length == 0) continue;
            if (sb.Length > 0) sb.Append("\n\n");
            sb.Append(e);
            if (sb.Length >= FortuneDocumentCharacters) { yield return sb.ToString(); sb.Clear(); }
        }
        if (sb.Length > 0) yield return sb.ToString();
    }

    private static Stream Open(string file)
    {
        return file.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new CheckedGzipStream(file) : File.OpenRead(file);
    }

    // The whole file as strict UTF-8 (a BOM dropped), or null after counting why it was skipped.
    private static string? ReadWhole(string file, SourceStats stats)
    {
        byte[] bytes;
        try
        {
            if (new FileInfo(file).Length > MaxDocumentFileBytes) { stats.Skip("too_large"); return null; }
            using var s = Open(file);
            using var ms = new MemoryStream();
            var buf = new byte[81920];
            int n;
            while ((n = s.Read(buf)) > 0)
            {
                ms.Write(buf, 0, n);
                if (ms.Length > MaxDocumentFileBytes) { stats.Skip("too_large"); return null; }
            }
            bytes = ms.ToArray();
            stats.Bytes += bytes.Length;
        }
        catch (InvalidDataException)
        {
            stats.Skip("gzip_corrupt"); // truncated or damaged .gz (see CheckedGzipStream)
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stats.Skip("unreadable");
            return null;
        }
        if (Array.IndexOf(bytes, (byte)0, 0, Math.Min(bytes.Length, 8192)) >= 0) { stats.Skip("binary"); return null; }
        try
        {
            int start = bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;
            return s_strictUtf8.GetString(bytes, start, bytes.Length - start);
        }
        catch (DecoderFallbackException)
        {
            stats.Skip("invalid_utf8");
            return null;
        }
    }

    private static IEnumerable<SourceDocument> ReadJsonl(string source, string id, string file, string field, SourceStats stats)
    {
        StreamReader reader;
        try { reader = new StreamReader(Open(file), s_strictUtf8, detectEncodingFromByteOrderMarks: false); }
        catch (InvalidDataException) { stats.Skip("gzip_corrupt"); yield break; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stats.Skip("unreadable");
            yield break;
        }
        using (reader)
        {
            int lineNo = 0;
            while (true)
            {
                string? line;
                try { line = reader.ReadLine(); }
                catch (DecoderFallbackException) { stats.Skip("invalid_utf8"); yield break; } // the rest of the file is not text
                catch (InvalidDataException) { stats.Skip("gzip_corrupt"); yield break; } // lines before it were whole and stay
                catch (IOException) { stats.Skip("unreadable"); yield break; }
                if (line is null) yield break;
                lineNo++;
                stats.Bytes += System.Text.Encoding.UTF8.GetByteCount(line) + 1;
                if (line.Trim().Length == 0) continue;
                string? text = null;
                try
                {
                    using var doc = JsonDocument.Parse(line);
                    if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.String)
                        text = v.GetString();
                }
                catch (JsonException) { }
                if (text is null) { stats.Skip("jsonl_bad_line"); continue; }
                if (string.IsNullOrWhiteSpace(text)) { stats.Skip("empty"); continue; }
                stats.Documents++;
                stats.Characters += text.Length;
                yield return new SourceDocument(source, $"{id}:{lineNo}", text);
            }
        }
    }
}
