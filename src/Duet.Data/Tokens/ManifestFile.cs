// Reading and rewriting a corpus folder's manifest.json (Manifest: sources, filters, text shards and, once
// `duet data tokenize` has run, its tokens section) so that what `duet data build` wrote comes back byte for byte.
using System.Text.Json;
using Duet.Formats;
using Duet.Formats.Tokens;

namespace Duet.Data.Tokens;

/// <summary>manifest.json of a corpus folder.</summary>
public static class ManifestFile
{
    /// <summary>The manifest's file name in a corpus folder.</summary>
    public const string Name = CorpusManifest.Name;

    // As DataPipeline writes it; sorted maps keep ordinal order when read back (see OrdinalSortedDictionaryConverter).
    internal static readonly JsonSerializerOptions Json = new(DataPipeline.OutputJson)
    {
        WriteIndented = true,
        Converters = { new OrdinalSortedDictionaryConverter() },
    };

    public static Manifest Read(string dir) => Manifest.Load(Path.Combine(dir, Name));

    public static byte[] Serialize(Manifest manifest) => JsonSerializer.SerializeToUtf8Bytes(manifest, Json);

    /// <summary>Replaces manifest.json atomically (temporary file, then rename).</summary>
    public static void Write(string dir, Manifest manifest)
    {
        var bytes = Serialize(manifest);
        AtomicFile.Write(Path.Combine(dir, Name), s => s.Write(bytes));
    }
}
