// The Debian documentation packages as named sources, read from where the packages install them, so a recipe
// says "debian-handbook/zh-CN" instead of a path, and the manifest records the package's version. A missing
// package is an error that names the apt-get line to install it.
namespace Duet.Data.Sources;

public sealed record DebianSource(string Name, string Package, string Root, SourceFormat Format, Func<string, bool> Include);

public static class DebianSources
{
    private static bool Html(string f) => f.EndsWith(".html", StringComparison.Ordinal);

    // Fortune files: the UTF-8 version (.u8) where the package has one, never the index (.dat) or the offensive set.
    private static bool Fortune(string f)
    {
        if (f.EndsWith(".dat", StringComparison.Ordinal) || f.Contains("/off/", StringComparison.Ordinal)) return false;
        return f.EndsWith(".u8", StringComparison.Ordinal) || !File.Exists(f + ".u8");
    }

    public static readonly DebianSource[] All =
    [
        new("debian-handbook/en-US", "debian-handbook", "/usr/share/doc/debian-handbook/html/en-US", SourceFormat.Html, f => Html(f) && !f.Contains("Common_Content", StringComparison.Ordinal)),
        new("debian-handbook/zh-CN", "debian-handbook", "/usr/share/doc/debian-handbook/html/zh-CN", SourceFormat.Html, f => Html(f) && !f.Contains("Common_Content", StringComparison.Ordinal)),
        new("debian-reference/en", "debian-reference-en", "/usr/share/debian-reference", SourceFormat.Html, f => f.EndsWith(".en.html", StringComparison.Ordinal)),
        new("debian-reference/zh-cn", "debian-reference-zh-cn", "/usr/share/debian-reference", SourceFormat.Html, f => f.EndsWith(".zh-cn.html", StringComparison.Ordinal)),
        new("fortunes", "fortunes", "/usr/share/games/fortunes", SourceFormat.Fortune, f => Fortune(f) && !IsChineseFortune(f)),
        new("fortunes-zh", "fortunes-zh", "/usr/share/games/fortunes", SourceFormat.Fortune, f => Fortune(f) && IsChineseFortune(f)),
        new("manpages", "manpages", "/usr/share/man", SourceFormat.Roff, f => IsManPage(f) && !f.Contains("/man/zh_", StringComparison.Ordinal) && IsUntranslatedManPage(f)),
        new("manpages-zh", "manpages-zh", "/usr/share/man/zh_CN", SourceFormat.Roff, IsManPage),
    ];

    private static readonly HashSet<string> s_zhFortunes = ["chinese", "song100", "tang300"];

    private static bool IsChineseFortune(string f)
    {
        var name = Path.GetFileName(f);
        if (name.EndsWith(".u8", StringComparison.Ordinal)) name = name[..^3];
        return s_zhFortunes.Contains(name);
    }

    private static bool IsManPage(string f) => f.Contains("/man", StringComparison.Ordinal) && System.Text.RegularExpressions.Regex.IsMatch(Path.GetFileName(f), @"\.[1-9][a-z]*(\.gz)?$");

    // /usr/share/man/manN/...: the English pages (translations live in /usr/share/man/LANG/manN).
    private static bool IsUntranslatedManPage(string f) => System.Text.RegularExpressions.Regex.IsMatch(f, @"^/usr/share/man/man[1-9]/");

    public static DebianSource Find(string name) =>
        All.FirstOrDefault(s => s.Name == name)
        ?? throw new InvalidDataException($"unknown Debian source '{name}'; known: {string.Join(", ", All.Select(s => s.Name))}");

    /// <summary>The files of a named source, or an error naming the apt-get line when its package is not installed.</summary>
    public static IEnumerable<string> Files(DebianSource s)
    {
        if (PackageVersion(s.Package) is null || !Directory.Exists(s.Root))
            throw new InvalidDataException($"{s.Name}: the Debian package {s.Package} is not installed (sudo apt-get install {s.Package})");
        return Directory.EnumerateFiles(s.Root, "*", SearchOption.AllDirectories).Where(s.Include);
    }

    /// <summary>The installed version from dpkg's status file, or null.</summary>
    public static string? PackageVersion(string package, string status = "/var/lib/dpkg/status")
    {
        if (!File.Exists(status)) return null;
        string? current = null;
        bool installed = false;
        foreach (var line in File.ReadLines(status))
        {
            if (line.StartsWith("Package: ", StringComparison.Ordinal)) { current = line[9..]; installed = false; }
            else if (current == package && line.StartsWith("Status: ", StringComparison.Ordinal)) installed = line.EndsWith(" installed", StringComparison.Ordinal);
            else if (current == package && installed && line.StartsWith("Version: ", StringComparison.Ordinal)) return line[9..];
        }
        return null;
    }
}
