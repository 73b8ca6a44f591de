// A data recipe: which sources, which languages, and every threshold of the filters, dedup and split, in one
// JSON file that is committed beside the corpus it builds (data/recipes/NAME.json). Paths are relative to the
// recipe's folder. Unknown properties are an error, so a misspelled threshold cannot silently fall back to
// its default.
using System.Text.Json;
using System.Text.Json.Serialization;
using Duet.Data.Dedup;
using Duet.Data.Filters;
using Duet.Data.Sources;

namespace Duet.Data;

public sealed record SourceSpec
{
    /// <summary>The name the manifest and the document ids use.</summary>
    public required string Name { get; init; }
    /// <summary>Files or folders (read recursively), relative to the recipe.</summary>
    public string[] Paths { get; init; } = [];
    /// <summary>A named Debian documentation source instead of paths (DebianSources.All: "debian-handbook/zh-CN", "fortunes-zh", ...).</summary>
    public string? Debian { get; init; }
    /// <summary>text, markdown, html or jsonl; by file extension when absent.</summary>
    public SourceFormat? Format { get; init; }
    /// <summary>The field of a JSONL line that holds the text.</summary>
    public string JsonField { get; init; } = "text";
}

public sealed record DedupSpec
{
    public bool Exact { get; init; } = true;
    public bool Near { get; init; } = true;
    public MinHashOptions MinHash { get; init; } = new();
}

public sealed record SplitSpec
{
    /// <summary>Share of documents (by a hash of their text, so stable across runs and inputs) held out.</summary>
    public double ValidationFraction { get; init; } = 0.01;
}

public sealed record Recipe
{
    public required string Name { get; init; }
    public required SourceSpec[] Sources { get; init; }
    /// <summary>Language tags to keep; documents tagged "mixed" are split by paragraph into these languages.</summary>
    public string[] Languages { get; init; } = ["en", "zh"];
    public QualityOptions Quality { get; init; } = new();
    public DedupSpec Dedup { get; init; } = new();
    public SplitSpec Split { get; init; } = new();
    /// <summary>Documents longer than this are cut into sections (Normalize/Sections.cs) before tagging and filters; 0: whole documents.</summary>
    public int SectionCharacters { get; init; }
    /// <summary>Shards written gzip-compressed (.jsonl.gz); the manifest's SHA-256 stays that of the JSONL text.</summary>
    public bool Compress { get; init; }
    /// <summary>Characters per shard before a new one starts.</summary>
    public long ShardCharacters { get; init; } = 50_000_000;
    /// <summary>Dropped documents kept as samples per reason, for `duet data inspect`.</summary>
    public int SamplesPerReason { get; init; } = 5;

    [JsonIgnore] public string BaseDirectory { get; init; } = ".";

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        WriteIndented = true,
    };

    public static Recipe Load(string path)
    {
        Recipe? r;
        try { r = JsonSerializer.Deserialize<Recipe>(File.ReadAllText(path), Json); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a valid recipe: {e.Message}", e); }
        if (r is null) throw new InvalidDataException($"{path}: the recipe is empty");
        if (r.Sources.Length == 0) throw new InvalidDataException($"{path}: the recipe names no sources");
        return r with { BaseDirectory = Path.GetDirectoryName(Path.GetFullPath(path)) ?? "." };
    }
}
