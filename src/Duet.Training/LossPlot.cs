// loss.svg beside a run's checkpoints: train loss per step (a thin line, averaged per pixel column when there are
// more steps than columns) and validation loss (points joined by a line), linear axes with ticks, a title and a
// legend. Self-contained SVG, invariant formatting, written atomically: the same metrics give the same bytes.
using System.Globalization;
using System.Text;

namespace Duet.Training;

public static class LossPlot
{
    private const double W = 800, H = 480, Left = 70, Right = 20, Top = 40, Bottom = 50;

    public static void Write(string path, IReadOnlyList<MetricsRecord> records, string title)
    {
        var svg = Render(records, title);
        Duet.Formats.AtomicFile.Write(path, s => s.Write(Encoding.UTF8.GetBytes(svg)));
    }

    public static string Render(IReadOnlyList<MetricsRecord> records, string title)
    {
        static string F(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);
        var train = records.Where(r => r.Kind == "train" && r.Values.TryGetValue("loss", out var l) && double.IsFinite(l))
            .Select(r => (X: (double)r.Step, Y: r.Values["loss"])).OrderBy(p => p.X).ToList();
        var val = records.Where(r => r.Kind == "validation" && r.Values.TryGetValue("val_loss", out var l) && double.IsFinite(l))
            .Select(r => (X: (double)r.Step, Y: r.Values["val_loss"])).OrderBy(p => p.X).ToList();
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"12\">\n");
        sb.Append(CultureInfo.InvariantCulture, $"<rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{W / 2}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{Escape(title)}: loss</text>\n");
        var all = train.Concat(val).ToList();
        if (all.Count == 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{W / 2}\" y=\"{H / 2}\" text-anchor=\"middle\">no steps yet</text>\n</svg>\n");
            return sb.ToString();
        }
        double x0 = 0, x1 = Math.Max(1, all.Max(p => p.X)), y0 = Math.Max(0, all.Min(p => p.Y) - 0.1), y1 = all.Max(p => p.Y) + 0.1;
        double px(double x) => Left + (x - x0) / (x1 - x0) * (W - Left - Right);
        double py(double y) => H - Bottom - (y - y0) / (y1 - y0) * (H - Top - Bottom);
        // Axes and ticks.
        sb.Append(CultureInfo.InvariantCulture, $"<path d=\"M{F(Left)},{F(Top)} V{F(H - Bottom)} H{F(W - Right)}\" stroke=\"black\" fill=\"none\"/>\n");
        foreach (var t in Ticks(x0, x1))
            sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{F(px(t))}\" y1=\"{F(H - Bottom)}\" x2=\"{F(px(t))}\" y2=\"{F(H - Bottom + 5)}\" stroke=\"black\"/><text x=\"{F(px(t))}\" y=\"{F(H - Bottom + 18)}\" text-anchor=\"middle\">{F(t)}</text>\n");
        foreach (var t in Ticks(y0, y1))
            sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{F(Left - 5)}\" y1=\"{F(py(t))}\" x2=\"{F(W - Right)}\" y2=\"{F(py(t))}\" stroke=\"#e5e5e5\"/><text x=\"{F(Left - 8)}\" y=\"{F(py(t) + 4)}\" text-anchor=\"end\">{F(t)}</text>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{F((Left + W - Right) / 2)}\" y=\"{F(H - 12)}\" text-anchor=\"middle\">step</text>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<text transform=\"translate(18,{F((Top + H - Bottom) / 2)}) rotate(-90)\" text-anchor=\"middle\">loss (nats per token)</text>\n");
        // Train: one point per pixel column (the mean of its steps).
        int columns = (int)(W - Left - Right);
        var buckets = train.GroupBy(p => (int)((px(p.X) - Left) / (W - Left - Right) * (columns - 1)))
            .Select(g => (X: g.Average(p => p.X), Y: g.Average(p => p.Y))).ToList();
        if (buckets.Count > 0)
            sb.Append("<polyline class=\"train\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.2\" points=\"")
              .Append(string.Join(' ', buckets.Select(p => $"{F(px(p.X))},{F(py(p.Y))}"))).Append("\"/>\n");
        if (val.Count > 0)
        {
            sb.Append("<polyline class=\"validation\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" points=\"")
              .Append(string.Join(' ', val.Select(p => $"{F(px(p.X))},{F(py(p.Y))}"))).Append("\"/>\n");
            foreach (var p in val) sb.Append(CultureInfo.InvariantCulture, $"<circle cx=\"{F(px(p.X))}\" cy=\"{F(py(p.Y))}\" r=\"3\" fill=\"#d62728\"/>\n");
        }
        // Legend.
        double lx = W - Right - 170, ly = Top + 10;
        sb.Append(CultureInfo.InvariantCulture, $"<rect x=\"{F(lx)}\" y=\"{F(ly)}\" width=\"160\" height=\"44\" fill=\"white\" stroke=\"#999\"/>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{F(lx + 8)}\" y1=\"{F(ly + 14)}\" x2=\"{F(lx + 32)}\" y2=\"{F(ly + 14)}\" stroke=\"#1f77b4\" stroke-width=\"2\"/><text x=\"{F(lx + 40)}\" y=\"{F(ly + 18)}\">train{(train.Count > 0 ? $" ({F(train[^1].Y)})" : "")}</text>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{F(lx + 8)}\" y1=\"{F(ly + 32)}\" x2=\"{F(lx + 32)}\" y2=\"{F(ly + 32)}\" stroke=\"#d62728\" stroke-width=\"2\"/><text x=\"{F(lx + 40)}\" y=\"{F(ly + 36)}\">validation{(val.Count > 0 ? $" ({F(val[^1].Y)})" : "")}</text>\n");
        sb.Append("</svg>\n");
        return sb.ToString();
    }

    // About five round ticks across [a, b].
    private static IEnumerable<double> Ticks(double a, double b)
    {
        double span = b - a, raw = span / 5, mag = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double step = raw / mag < 1.5 ? mag : raw / mag < 3.5 ? 2 * mag : raw / mag < 7.5 ? 5 * mag : 10 * mag;
        for (double t = Math.Ceiling(a / step) * step; t <= b + 1e-9; t += step) yield return Math.Round(t, 10);
    }

    // Text content: the three markup characters escaped, and what XML 1.0 cannot hold at all (control characters,
    // lone surrogates, U+FFFE/U+FFFF) dropped, so a config name never makes the file unreadable.
    private static string Escape(string s)
    {
        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (i + 1 < s.Length && System.Xml.XmlConvert.IsXmlSurrogatePair(s[i + 1], c)) { sb.Append(c).Append(s[++i]); continue; }
            if (!System.Xml.XmlConvert.IsXmlChar(c)) continue;
            sb.Append(c switch { '&' => "&amp;", '<' => "&lt;", '>' => "&gt;", _ => c.ToString() });
        }
        return sb.ToString();
    }
}
