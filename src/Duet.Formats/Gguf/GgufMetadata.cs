// The metadata key/value pairs of a GGUF file, in file order, with lookups by key and typed accessors.
// Integer accessors accept any integer type whose value fits, because writers differ (the spec suggests
// uint64 counts, llama.cpp writes uint32, some converters write int32). A present key with an unusable
// value is a file problem, so it throws GgufFormatException naming the key and its offset.
using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace Duet.Formats.Gguf;

public sealed class GgufMetadata : IReadOnlyList<KeyValuePair<string, GgufValue>>
{
    private readonly List<KeyValuePair<string, GgufValue>> _entries;
    private readonly long[] _offsets; // file offset of each value, -1 when built in memory
    private readonly Dictionary<string, int> _index;
    private readonly string _source;

    /// <summary>Builds metadata from pairs in order; throws <see cref="ArgumentException"/> on a duplicate key.</summary>
    public GgufMetadata(IEnumerable<KeyValuePair<string, GgufValue>> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        _entries = [];
        _index = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (key, value) in entries)
        {
            ArgumentNullException.ThrowIfNull(key, nameof(entries));
            ArgumentNullException.ThrowIfNull(value, nameof(entries));
            if (!_index.TryAdd(key, _entries.Count))
                throw new ArgumentException($"Duplicate GGUF metadata key '{key}'.", nameof(entries));
            _entries.Add(new(key, value));
        }
        _offsets = new long[_entries.Count];
        Array.Fill(_offsets, -1L);
        _source = "";
    }

    // Reader path: keys already checked for duplicates, offsets known.
    internal GgufMetadata(List<KeyValuePair<string, GgufValue>> entries, Dictionary<string, int> index, long[] offsets, string source)
    {
        _entries = entries;
        _index = index;
        _offsets = offsets;
        _source = source;
    }

    public int Count => _entries.Count;

    public KeyValuePair<string, GgufValue> this[int index] => _entries[index];

    /// <summary>The value of <paramref name="key"/>; throws <see cref="KeyNotFoundException"/> when absent.</summary>
    public GgufValue this[string key] => TryGet(key, out var v) ? v : throw new KeyNotFoundException($"GGUF metadata has no key '{key}'.");

    public IEnumerable<string> Keys => _entries.Select(e => e.Key);

    public bool ContainsKey(string key) => _index.ContainsKey(key);

    public bool TryGet(string key, [NotNullWhen(true)] out GgufValue? value)
    {
        if (_index.TryGetValue(key, out int i))
        {
            value = _entries[i].Value;
            return true;
        }
        value = null;
        return false;
    }

    /// <summary>File offset of the value of <paramref name="key"/>, or -1 (absent or built in memory).</summary>
    public long OffsetOf(string key) => _index.TryGetValue(key, out int i) ? _offsets[i] : -1;

    /// <summary>general.architecture, or null.</summary>
    public string? Architecture => GetString(GgufKeys.GeneralArchitecture);

    // ---- strings and bools

    /// <summary>The string value, or null when absent; a non-string value throws.</summary>
    public string? GetString(string key) => TryGet(key, out var v) ? Expect<string>(key, v, "a string") : null;

    public string GetString(string key, string defaultValue) => GetString(key) ?? defaultValue;

    public bool GetBool(string key) => Expect<bool>(key, Required(key), "a bool");

    public bool GetBool(string key, bool defaultValue) => TryGet(key, out var v) ? Expect<bool>(key, v, "a bool") : defaultValue;

    // ---- integers: any integer type that fits

    public uint GetUInt32(string key) => ToUInt32(key, Required(key));

    public uint GetUInt32(string key, uint defaultValue) => TryGet(key, out var v) ? ToUInt32(key, v) : defaultValue;

    public int GetInt32(string key) => ToInt32(key, Required(key));

    public int GetInt32(string key, int defaultValue) => TryGet(key, out var v) ? ToInt32(key, v) : defaultValue;

    public long GetInt64(string key) => ToInt64(key, Required(key));

    public long GetInt64(string key, long defaultValue) => TryGet(key, out var v) ? ToInt64(key, v) : defaultValue;

    public ulong GetUInt64(string key) => ToUInt64(key, Required(key));

    public ulong GetUInt64(string key, ulong defaultValue) => TryGet(key, out var v) ? ToUInt64(key, v) : defaultValue;

    // ---- floats: float32, or float64 narrowed (some converters write float64 epsilons)

    public float GetFloat(string key) => ToFloat(key, Required(key));

    public float GetFloat(string key, float defaultValue) => TryGet(key, out var v) ? ToFloat(key, v) : defaultValue;

    // ---- arrays (fresh copies; null when absent)

    /// <summary>A string array (e.g. tokenizer.ggml.tokens), or null when absent.</summary>
    public string[]? GetStringArray(string key) =>
        TryGet(key, out var v) ? ExpectArray(key, v, GgufValueType.String).ToArray<string>() : null;

    /// <summary>A float32 array (e.g. tokenizer.ggml.scores); float64 elements are narrowed. Null when absent.</summary>
    public float[]? GetFloatArray(string key)
    {
        if (!TryGet(key, out var v))
            return null;
        var a = ExpectArray(key, v, null);
        return a.ElementType switch
        {
            GgufValueType.Float32 => a.ToArray<float>(),
            GgufValueType.Float64 => Array.ConvertAll(a.ToArray<double>(), d => (float)d),
            _ => throw WrongType(key, v, "an array of float32"),
        };
    }

    /// <summary>An integer array as int32 (e.g. tokenizer.ggml.token_type); any integer element type whose values fit. Null when absent.</summary>
    public int[]? GetInt32Array(string key)
    {
        if (!TryGet(key, out var v))
            return null;
        var a = ExpectArray(key, v, null);
        var result = new int[a.Count];
        switch (a.ElementType)
        {
            case GgufValueType.Int32: return a.ToArray<int>();
            case GgufValueType.UInt8: Widen(a.AsSpan<byte>(), result, x => x); break;
            case GgufValueType.Int8: Widen(a.AsSpan<sbyte>(), result, x => x); break;
            case GgufValueType.UInt16: Widen(a.AsSpan<ushort>(), result, x => x); break;
            case GgufValueType.Int16: Widen(a.AsSpan<short>(), result, x => x); break;
            case GgufValueType.UInt32: Widen(a.AsSpan<uint>(), result, x => x); break;
            case GgufValueType.Int64: Widen(a.AsSpan<long>(), result, x => x); break;
            case GgufValueType.UInt64: Widen(a.AsSpan<ulong>(), result, x => x <= long.MaxValue ? (long)x : long.MaxValue); break;
            default: throw WrongType(key, v, "an array of integers");
        }
        return result;

        void Widen<T>(ReadOnlySpan<T> src, int[] dst, Func<T, long> toLong)
        {
            for (int i = 0; i < src.Length; i++)
            {
                long x = toLong(src[i]);
                if (x is < int.MinValue or > int.MaxValue)
                    throw Fail(key, $"element {i} = {src[i]} does not fit in int32");
                dst[i] = (int)x;
            }
        }
    }

    public IEnumerator<KeyValuePair<string, GgufValue>> GetEnumerator() => _entries.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private GgufValue Required(string key) =>
        TryGet(key, out var v) ? v : throw new GgufFormatException($"GGUF metadata has no required key '{key}'{_source}");

    private T Expect<T>(string key, GgufValue v, string expected) => v.Value is T t ? t : throw WrongType(key, v, expected);

    private GgufArray ExpectArray(string key, GgufValue v, GgufValueType? elementType)
    {
        if (v.Value is GgufArray a && (elementType is null || a.ElementType == elementType))
            return a;
        throw WrongType(key, v, elementType is { } t ? $"an array of {GgufArray.TypeName(t)}" : "an array");
    }

    private uint ToUInt32(string key, GgufValue v) =>
        v.TryGetUInt64(out ulong u) && u <= uint.MaxValue ? (uint)u : throw NotInRange(key, v, "uint32");

    private int ToInt32(string key, GgufValue v) =>
        v.TryGetInt64(out long l) && l is >= int.MinValue and <= int.MaxValue ? (int)l : throw NotInRange(key, v, "int32");

    private long ToInt64(string key, GgufValue v) => v.TryGetInt64(out long l) ? l : throw NotInRange(key, v, "int64");

    private ulong ToUInt64(string key, GgufValue v) => v.TryGetUInt64(out ulong u) ? u : throw NotInRange(key, v, "uint64");

    private float ToFloat(string key, GgufValue v) => v.Value switch
    {
        float f => f,
        double d => (float)d,
        _ => throw WrongType(key, v, "a float32"),
    };

    private GgufFormatException NotInRange(string key, GgufValue v, string target) => v.IsInteger
        ? Fail(key, $"value {v} does not fit in {target}")
        : WrongType(key, v, $"an integer that fits in {target}");

    private GgufFormatException WrongType(string key, GgufValue v, string expected)
    {
        string found = v.Value is GgufArray a ? $"an array of {GgufArray.TypeName(a.ElementType)}" : GgufArray.TypeName(v.Type);
        return Fail(key, $"has type {found}, expected {expected}");
    }

    private GgufFormatException Fail(string key, string problem)
    {
        long offset = OffsetOf(key);
        string where = offset >= 0 ? $" (value at offset {offset})" : "";
        return new GgufFormatException($"GGUF metadata key '{key}': {problem}{where}{_source}", offset);
    }
}
