// The GGUF metadata value model (docs/gguf.md `gguf_metadata_value_type` / `gguf_metadata_value_t`):
// a tagged, immutable value. Scalars are held as their .NET types, strings as string, arrays as a GgufArray
// over a typed .NET array (byte[] ... double[], string[], or GgufValue[] for arrays of arrays).
// Not here: parsing and writing (GgufFile, GgufWriter) or key lookups (GgufMetadata).
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Duet.Formats.Gguf;

/// <summary>Metadata value types, numbered as in the spec (`gguf_metadata_value_type`, a uint32 in the file).</summary>
public enum GgufValueType
{
    UInt8 = 0,
    Int8 = 1,
    UInt16 = 2,
    Int16 = 3,
    UInt32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    UInt64 = 10,
    Int64 = 11,
    Float64 = 12,
}

/// <summary>An immutable metadata value: a scalar, a string, or a <see cref="GgufArray"/>.</summary>
public sealed class GgufValue : IEquatable<GgufValue>
{
    private GgufValue(GgufValueType type, object value)
    {
        Type = type;
        Value = value;
    }

    public GgufValueType Type { get; }

    /// <summary>
    /// byte, sbyte, ushort, short, uint, int, float, bool, string, ulong, long, double, or <see cref="GgufArray"/>,
    /// matching <see cref="Type"/>.
    /// </summary>
    public object Value { get; }

    public static GgufValue Of(byte value) => new(GgufValueType.UInt8, value);
    public static GgufValue Of(sbyte value) => new(GgufValueType.Int8, value);
    public static GgufValue Of(ushort value) => new(GgufValueType.UInt16, value);
    public static GgufValue Of(short value) => new(GgufValueType.Int16, value);
    public static GgufValue Of(uint value) => new(GgufValueType.UInt32, value);
    public static GgufValue Of(int value) => new(GgufValueType.Int32, value);
    public static GgufValue Of(float value) => new(GgufValueType.Float32, value);
    public static GgufValue Of(bool value) => new(GgufValueType.Bool, value);
    public static GgufValue Of(ulong value) => new(GgufValueType.UInt64, value);
    public static GgufValue Of(long value) => new(GgufValueType.Int64, value);
    public static GgufValue Of(double value) => new(GgufValueType.Float64, value);

    public static GgufValue Of(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return new(GgufValueType.String, value);
    }

    // Arrays: the input is copied, so later changes to the caller's array do not show through.
    public static GgufValue Of(byte[] values) => Of(new GgufArray(GgufValueType.UInt8, Copy(values)));
    public static GgufValue Of(sbyte[] values) => Of(new GgufArray(GgufValueType.Int8, Copy(values)));
    public static GgufValue Of(ushort[] values) => Of(new GgufArray(GgufValueType.UInt16, Copy(values)));
    public static GgufValue Of(short[] values) => Of(new GgufArray(GgufValueType.Int16, Copy(values)));
    public static GgufValue Of(uint[] values) => Of(new GgufArray(GgufValueType.UInt32, Copy(values)));
    public static GgufValue Of(int[] values) => Of(new GgufArray(GgufValueType.Int32, Copy(values)));
    public static GgufValue Of(float[] values) => Of(new GgufArray(GgufValueType.Float32, Copy(values)));
    public static GgufValue Of(bool[] values) => Of(new GgufArray(GgufValueType.Bool, Copy(values)));
    public static GgufValue Of(ulong[] values) => Of(new GgufArray(GgufValueType.UInt64, Copy(values)));
    public static GgufValue Of(long[] values) => Of(new GgufArray(GgufValueType.Int64, Copy(values)));
    public static GgufValue Of(double[] values) => Of(new GgufArray(GgufValueType.Float64, Copy(values)));

    public static GgufValue Of(string[] values)
    {
        var copy = Copy(values);
        foreach (var s in copy)
            ArgumentNullException.ThrowIfNull(s, nameof(values));
        return Of(new GgufArray(GgufValueType.String, copy));
    }

    /// <summary>An array of arrays (element type Array): every element must itself be an array value.</summary>
    public static GgufValue Of(GgufValue[] arrays)
    {
        var copy = Copy(arrays);
        foreach (var v in copy)
        {
            ArgumentNullException.ThrowIfNull(v, nameof(arrays));
            if (v.Type != GgufValueType.Array)
                throw new ArgumentException($"An array of arrays can only hold array values, not {v.Type}.", nameof(arrays));
        }
        return Of(new GgufArray(GgufValueType.Array, copy));
    }

    public static GgufValue Of(GgufArray array)
    {
        ArgumentNullException.ThrowIfNull(array);
        return new(GgufValueType.Array, array);
    }

    /// <summary>The value as <typeparamref name="T"/>; throws <see cref="InvalidCastException"/> naming both types otherwise.</summary>
    public T As<T>() => Value is T t
        ? t
        : throw new InvalidCastException($"GGUF value of type {GgufArray.TypeName(Type)} is not a {typeof(T).Name}.");

    public string AsString() => As<string>();

    public GgufArray AsArray() => As<GgufArray>();

    /// <summary>True for the eight integer types (bool is not an integer).</summary>
    public bool IsInteger => Type is GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.UInt16 or GgufValueType.Int16
        or GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.UInt64 or GgufValueType.Int64;

    /// <summary>Any integer type whose value fits in a long.</summary>
    public bool TryGetInt64(out long value)
    {
        switch (Value)
        {
            case byte v: value = v; return true;
            case sbyte v: value = v; return true;
            case ushort v: value = v; return true;
            case short v: value = v; return true;
            case uint v: value = v; return true;
            case int v: value = v; return true;
            case long v: value = v; return true;
            case ulong v when v <= long.MaxValue: value = (long)v; return true;
            default: value = 0; return false;
        }
    }

    /// <summary>Any integer type whose value is not negative.</summary>
    public bool TryGetUInt64(out ulong value)
    {
        if (Value is ulong u)
        {
            value = u;
            return true;
        }
        if (TryGetInt64(out long l) && l >= 0)
        {
            value = (ulong)l;
            return true;
        }
        value = 0;
        return false;
    }

    public bool Equals(GgufValue? other)
    {
        if (other is null || other.Type != Type)
            return false;
        if (ReferenceEquals(this, other))
            return true;
        return Value switch
        {
            // Floats compare by bits, so NaN payloads and -0 survive a round trip check.
            float f => BitConverter.SingleToInt32Bits(f) == BitConverter.SingleToInt32Bits((float)other.Value),
            double d => BitConverter.DoubleToInt64Bits(d) == BitConverter.DoubleToInt64Bits((double)other.Value),
            string s => string.Equals(s, (string)other.Value, StringComparison.Ordinal),
            GgufArray a => a.Equals((GgufArray)other.Value),
            _ => Value.Equals(other.Value),
        };
    }

    public override bool Equals(object? obj) => Equals(obj as GgufValue);

    public override int GetHashCode() => Value switch
    {
        float f => HashCode.Combine(Type, BitConverter.SingleToInt32Bits(f)),
        double d => HashCode.Combine(Type, BitConverter.DoubleToInt64Bits(d)),
        string s => HashCode.Combine(Type, string.GetHashCode(s, StringComparison.Ordinal)),
        GgufArray a => HashCode.Combine(Type, a.GetHashCode()),
        _ => HashCode.Combine(Type, Value),
    };

    /// <summary>A short display form: strings quoted, long arrays elided, for dumps and messages.</summary>
    public override string ToString() => Value switch
    {
        string s => Quote(s, 80),
        bool b => b ? "true" : "false",
        GgufArray a => a.ToString(),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => Value.ToString() ?? "",
    };

    internal static string Quote(string s, int max)
    {
        var sb = new StringBuilder("\"");
        foreach (char c in s.Length > max ? s[..max] : s)
        {
            sb.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ when char.IsControl(c) => $"\\u{(int)c:x4}",
                _ => c.ToString(),
            });
        }
        sb.Append(s.Length > max ? "\"..." : "\"");
        return sb.ToString();
    }

    // Used by the reader, which builds fresh arrays and need not copy them again.
    internal static GgufValue Wrap(GgufArray array) => new(GgufValueType.Array, array);

    internal static GgufValue Scalar(GgufValueType type, object value) => new(type, value);

    private static T[] Copy<T>(T[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return (T[])values.Clone();
    }
}

/// <summary>
/// An immutable GGUF array: an element type and a typed .NET array
/// (byte[], sbyte[], ushort[], short[], uint[], int[], float[], bool[], string[], ulong[], long[], double[],
/// or GgufValue[] whose elements are arrays).
/// </summary>
public sealed class GgufArray : IEquatable<GgufArray>
{
    private readonly Array _items;

    internal GgufArray(GgufValueType elementType, Array items)
    {
        ElementType = elementType;
        _items = items;
    }

    public GgufValueType ElementType { get; }

    public int Count => _items.Length;

    /// <summary>
    /// The elements without a copy. <typeparamref name="T"/> must match <see cref="ElementType"/>
    /// (e.g. string for String, float for Float32, GgufValue for Array).
    /// </summary>
    public ReadOnlySpan<T> AsSpan<T>() => _items is T[] a
        ? a
        : throw new InvalidCastException($"GGUF array of {TypeName(ElementType)} is not an array of {typeof(T).Name}.");

    /// <summary>A fresh copy of the elements; <typeparamref name="T"/> must match <see cref="ElementType"/>.</summary>
    public T[] ToArray<T>() => AsSpan<T>().ToArray();

    /// <summary>The .NET element type used for <paramref name="type"/> (GgufValue for nested arrays).</summary>
    public static Type ClrType(GgufValueType type) => type switch
    {
        GgufValueType.UInt8 => typeof(byte),
        GgufValueType.Int8 => typeof(sbyte),
        GgufValueType.UInt16 => typeof(ushort),
        GgufValueType.Int16 => typeof(short),
        GgufValueType.UInt32 => typeof(uint),
        GgufValueType.Int32 => typeof(int),
        GgufValueType.Float32 => typeof(float),
        GgufValueType.Bool => typeof(bool),
        GgufValueType.String => typeof(string),
        GgufValueType.Array => typeof(GgufValue),
        GgufValueType.UInt64 => typeof(ulong),
        GgufValueType.Int64 => typeof(long),
        GgufValueType.Float64 => typeof(double),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown GGUF value type."),
    };

    public bool Equals(GgufArray? other)
    {
        if (other is null || other.ElementType != ElementType || other.Count != Count)
            return false;
        switch (_items)
        {
            case string[] s:
                var os = (string[])other._items;
                for (int i = 0; i < s.Length; i++)
                {
                    if (!string.Equals(s[i], os[i], StringComparison.Ordinal))
                        return false;
                }
                return true;
            case GgufValue[] v:
                var ov = (GgufValue[])other._items;
                for (int i = 0; i < v.Length; i++)
                {
                    if (!v[i].Equals(ov[i]))
                        return false;
                }
                return true;
            default:
                // Every other element type is unmanaged: compare the bytes (floats by bit pattern).
                return Bytes(_items).SequenceEqual(Bytes(other._items));
        }
    }

    public override bool Equals(object? obj) => Equals(obj as GgufArray);

    public override int GetHashCode() => HashCode.Combine(ElementType, Count);

    public override string ToString()
    {
        const int Shown = 8;
        var sb = new StringBuilder();
        sb.Append(TypeName(ElementType)).Append('[').Append(Count).Append("] [");
        for (int i = 0; i < Math.Min(Count, Shown); i++)
        {
            if (i > 0)
                sb.Append(", ");
            sb.Append(_items.GetValue(i) switch
            {
                string s => GgufValue.Quote(s, 40),
                bool b => b ? "true" : "false",
                IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
                var o => o?.ToString(),
            });
        }
        sb.Append(Count > Shown ? ", ...]" : "]");
        return sb.ToString();
    }

    /// <summary>The spec's lower-case name of a value type (uint8, float32, string, ...).</summary>
    internal static string TypeName(GgufValueType type) => type switch
    {
        GgufValueType.UInt8 => "uint8",
        GgufValueType.Int8 => "int8",
        GgufValueType.UInt16 => "uint16",
        GgufValueType.Int16 => "int16",
        GgufValueType.UInt32 => "uint32",
        GgufValueType.Int32 => "int32",
        GgufValueType.Float32 => "float32",
        GgufValueType.Bool => "bool",
        GgufValueType.String => "string",
        GgufValueType.Array => "array",
        GgufValueType.UInt64 => "uint64",
        GgufValueType.Int64 => "int64",
        GgufValueType.Float64 => "float64",
        _ => $"type {(int)type}",
    };

    // The element storage, for the writer (which needs the raw bytes of unmanaged element arrays).
    internal Array Items => _items;

    internal static ReadOnlySpan<byte> Bytes(Array items) => items switch
    {
        byte[] a => a,
        sbyte[] a => MemoryMarshal.AsBytes(a.AsSpan()),
        ushort[] a => MemoryMarshal.AsBytes(a.AsSpan()),
        short[] a => MemoryMarshal.AsBytes(a.AsSpan()),
        uint[] a => MemoryMarshal.AsBytes(a.AsSpan()),
        int[] a => MemoryMarshal.AsBytes(a.AsSpan()),
        float[] a => MemoryMarshal.AsBytes(a.AsSpan()),
        bool[] a => MemoryMarshal.AsBytes(a.AsSpan()),
        ulong[] a => MemoryMarshal.AsBytes(a.AsSpan()),
        long[] a => MemoryMarshal.AsBytes(a.AsSpan()),
        double[] a => MemoryMarshal.AsBytes(a.AsSpan()),
        _ => throw new InvalidOperationException($"No byte view of {items.GetType().Name}."),
    };
}
