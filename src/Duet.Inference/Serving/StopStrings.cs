// Stop strings over streamed text: text that could still be the start of a stop string is held back
// until the next piece decides it, so a client never sees part of "</answer>" before generation ends there.
namespace Duet.Inference.Serving;

public sealed class StopStrings(IReadOnlyList<string> stops)
{
    private readonly string[] _stops = stops.Where(s => s.Length > 0).ToArray();
    private string _held = "";

    public bool Stopped { get; private set; }

    /// <summary>Adds a piece of text; returns what may be shown now. After a stop string is found, Stopped is set and the rest is dropped.</summary>
    public string Push(string piece)
    {
        if (Stopped) return "";
        if (_stops.Length == 0) return piece;
        string buf = _held + piece;
        int cut = -1;
        foreach (var s in _stops)
        {
            int i = buf.IndexOf(s, StringComparison.Ordinal);
            if (i >= 0 && (cut < 0 || i < cut)) cut = i;
        }
        if (cut >= 0)
        {
            Stopped = true;
            _held = "";
            return buf[..cut];
        }
        int keep = 0;
        foreach (var s in _stops)
            for (int k = Math.Min(s.Length - 1, buf.Length); k > keep; k--)
                if (string.CompareOrdinal(buf, buf.Length - k, s, 0, k) == 0) { keep = k; break; }
        // Never split a surrogate pair between what is shown and what is held.
        if (keep > 0 && keep < buf.Length && char.IsLowSurrogate(buf[^keep])) keep++;
        _held = buf[^keep..];
        return buf[..^keep];
    }

    /// <summary>The held-back text, at the end of generation (it did not become a stop string).</summary>
    public string Flush()
    {
        var h = Stopped ? "" : _held;
        _held = "";
        return h;
    }
}
