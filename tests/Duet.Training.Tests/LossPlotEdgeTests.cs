// The edges of loss.svg that TrainingPartsTests does not reach: 0, 1, 2 and 100k steps, constant and huge losses,
// a culture with a decimal comma, and a title that XML cannot hold as is.
using System.Globalization;
using System.Text;
using System.Xml.Linq;

namespace Duet.Training.Tests;

public sealed class LossPlotEdgeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("duet-plot-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static List<MetricsRecord> Curve(int steps) => Enumerable.Range(0, steps)
        .Select(s => new MetricsRecord("train", s, new Dictionary<string, double> { ["loss"] = 9 * Math.Exp(-s / (steps / 5.0 + 1)) + 2 + 0.1 * Math.Sin(s) }))
        .ToList();

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(100_000)]
    public void LossPlot_ZeroOneOrManyPoints_IsValidXmlWithBoundedSize(int steps)
    {
        var svg = LossPlot.Render(Curve(steps), "t");
        XDocument.Parse(svg);
        Assert.True(svg.Length < 200_000, $"{svg.Length} chars for {steps} steps");
        Assert.DoesNotContain("NaN", svg, StringComparison.Ordinal);
        Assert.DoesNotContain("Infinity", svg, StringComparison.Ordinal);
    }

    [Fact]
    public void LossPlot_UnderACommaCulture_GivesTheSameBytes()
    {
        var records = Curve(3000);
        records.Add(new MetricsRecord("validation", 1499, new Dictionary<string, double> { ["val_loss"] = 3.25 }));
        var invariant = LossPlot.Render(records, "run");
        var saved = CultureInfo.CurrentCulture;
        try
        {
            CultureInfo.CurrentCulture = new CultureInfo("de-DE");
            Assert.Equal(invariant, LossPlot.Render(records, "run"));
            var path = Path.Combine(_dir, "loss.svg");
            LossPlot.Write(path, records, "run");
            Assert.Equal(Encoding.UTF8.GetBytes(invariant), File.ReadAllBytes(path));
        }
        finally { CultureInfo.CurrentCulture = saved; }
    }

    [Fact]
    public void LossPlot_TitleWithControlCharactersAndQuotes_IsStillValidXml()
    {
        XDocument.Parse(LossPlot.Render(Curve(10), "a\u0001b\"c'<d>&e"));
    }

    [Fact]
    public void LossPlot_HugeOrConstantLosses_IsValidXml()
    {
        var flat = Enumerable.Range(0, 50).Select(s => new MetricsRecord("train", s, new Dictionary<string, double> { ["loss"] = 4 })).ToList();
        XDocument.Parse(LossPlot.Render(flat, "flat"));
        var huge = Enumerable.Range(0, 50).Select(s => new MetricsRecord("train", s, new Dictionary<string, double> { ["loss"] = s == 0 ? 1e300 : 3 })).ToList();
        var svg = LossPlot.Render(huge, "huge");
        XDocument.Parse(svg);
        Assert.DoesNotContain("Infinity", svg, StringComparison.Ordinal);
    }
}
