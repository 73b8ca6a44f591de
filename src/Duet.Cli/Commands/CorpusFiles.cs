using Duet.Data;

namespace Duet.Cli.Commands;

/// <summary>Input paths of training commands: files as given, or a corpus folder of `duet data build` as its shards.</summary>
internal static class CorpusFiles
{
    /// <summary>The file itself, or the shards of <paramref name="split"/> that a corpus folder's manifest.json lists.</summary>
    public static IEnumerable<string> TrainFiles(string path) => Shards(path, "train");

    public static IEnumerable<string> Shards(string path, string split)
    {
        if (File.Exists(path)) return [path];
        var manifestPath = Path.Combine(path, "manifest.json");
        if (!Directory.Exists(path)) throw new FileNotFoundException($"{path}: no such file or folder", path);
        if (!File.Exists(manifestPath)) throw new FileNotFoundException($"{path}: a folder without manifest.json (not a corpus of `duet data build`)", manifestPath);
        var manifest = Manifest.Load(manifestPath);
        var shards = manifest.Shards.Where(s => s.Split == split).Select(s => Path.Combine(path, s.Path)).ToArray();
        if (shards.Length == 0) throw new InvalidDataException($"{manifestPath}: no {split} shards");
        foreach (var s in shards) if (!File.Exists(s)) throw new FileNotFoundException($"{s}: listed in {manifestPath} but missing", s);
        return shards;
    }
}
