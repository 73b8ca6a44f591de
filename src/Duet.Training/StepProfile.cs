// Wall time by part of a training step (`duet bench-train --parts`): the model and the step runner mark the end of
// each part, and a part's time runs from the previous mark. Off unless a profile is set; the marks come per layer and
// per step, never per token, and allocate only the first time a part is seen.
using System.Diagnostics;

namespace Duet.Training;

public sealed class StepProfile
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Dictionary<string, int> _index = [];
    private readonly List<(string Part, double Milliseconds)> _parts = [];
    private double _last;

    /// <summary>Starts the next part here (the time since the last mark belongs to no part).</summary>
    public void Skip() => _last = _clock.Elapsed.TotalMilliseconds;

    /// <summary>The time since the last mark is <paramref name="part"/>'s.</summary>
    public void Mark(string part)
    {
        double now = _clock.Elapsed.TotalMilliseconds;
        if (!_index.TryGetValue(part, out int i)) { i = _parts.Count; _index[part] = i; _parts.Add((part, 0)); }
        _parts[i] = (part, _parts[i].Milliseconds + now - _last);
        _last = now;
    }

    /// <summary>Each part's total time, in the order the parts first ran.</summary>
    public IReadOnlyList<(string Part, double Milliseconds)> Parts => _parts;

    /// <summary>Forgets the totals (after warm-up steps).</summary>
    public void Clear()
    {
        for (int i = 0; i < _parts.Count; i++) _parts[i] = (_parts[i].Part, 0);
        Skip();
    }
}
