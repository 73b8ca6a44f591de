// A test that needs the Debian handbook (package debian-handbook) installed; skipped, with the apt-get line, when
// it is not (CI runs without it). xunit 2 has no runtime skip, so the attribute decides when tests are discovered.
using Duet.Data.LanguageId;

namespace Duet.Data.Tests;

public sealed class HandbookFactAttribute : FactAttribute
{
    public HandbookFactAttribute()
    {
        if (!HandbookCorpus.IsInstalled())
            Skip = $"the Debian handbook is not installed at {HandbookCorpus.DefaultRoot} (sudo apt-get install {HandbookCorpus.Package})";
    }
}
