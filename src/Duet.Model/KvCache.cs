// One layer's cached keys or values, [capacity, width] (width = KV heads x head dim), in the element type the user
// chose (llama.cpp's --cache-type-k / --cache-type-v):
//   F32   the values as computed (the default: attention reads them in place, every result as without a cache type);
//   F16   half the memory, each value rounded to the nearest half (llama.cpp's default cache type);
//   Q8_0  34 bytes per 32 values (3.8x less than F32): per block of 32 one fp16 scale d = max|x| / 127 and codes
//         round(x / d), ggml's quantize_row_q8_0_ref, so the cache holds what llama.cpp's q8_0 cache holds.
// Rows are stored as they are computed (a quantization per position and layer, KvDim values). Attention over an F16
// or Q8_0 cache first expands the positions it reads of one KV head into a float scratch [n, head dim] (Expand), then
// runs the same kernels as over F32: memory holds and streams the small form, the arithmetic stays in float.
//   torch: k.half().float() (F16); (torch.round(k / d) * d per block of 32, d = amax / 127 rounded to half) (Q8_0)
using Duet.Tensors;
using Duet.Tensors.Kernels;
using Duet.Tensors.Quant;

namespace Duet.Model;

/// <summary>The element type of the KV cache.</summary>
public enum KvCacheType { F32, F16, Q8_0 }

public sealed unsafe class KvCache
{
    private const int Q8Block = 32, Q8Bytes = 34;
    private readonly float[]? _floats;
    private readonly byte[]? _bytes;   // F16 and Q8_0 rows, pinned: Expand reads them through a pointer
    private readonly int _rowBytes;

    public KvCacheType Type { get; }
    public int Capacity { get; }
    public int Width { get; }

    public KvCache(KvCacheType type, int capacity, int width, int headDim)
    {
        if (type == KvCacheType.Q8_0 && headDim % Q8Block != 0)
            throw new ArgumentException($"a q8_0 KV cache needs a head dimension that is a multiple of {Q8Block} (this model's is {headDim}): use f16 or f32");
        Type = type;
        Capacity = capacity;
        Width = width;
        if (type == KvCacheType.F32) { _floats = new float[(long)capacity * width]; return; }
        _rowBytes = type == KvCacheType.F16 ? width * 2 : width / Q8Block * Q8Bytes;
        _bytes = GC.AllocateUninitializedArray<byte>(checked(capacity * _rowBytes), pinned: true);
    }

    /// <summary>The F32 cache as one array [capacity, width] (attention reads it in place); null for F16 and Q8_0.</summary>
    public float[]? Floats => _floats;

    /// <summary>Bytes one position takes.</summary>
    public long BytesPerPosition => _floats is null ? _rowBytes : (long)Width * sizeof(float);

    /// <summary>Stores the row of position <paramref name="pos"/> (rounded to the cache's type).</summary>
    public void Store(int pos, ReadOnlySpan<float> row)
    {
        if ((uint)pos >= (uint)Capacity || row.Length != Width) throw new ArgumentException($"KV cache: position {pos} of {Capacity}, row of {row.Length} values (want {Width})");
        if (_floats is not null) row.CopyTo(_floats.AsSpan(pos * Width, Width));
        else Quantizer.QuantizeRow(Type == KvCacheType.F16 ? GgmlType.F16 : GgmlType.Q8_0, row, _bytes.AsSpan(pos * _rowBytes, _rowBytes));
    }

    /// <summary>Positions [0, <paramref name="n"/>) of the same cache of another sequence (same type and width), as they are.</summary>
    public void CopyPrefixFrom(KvCache other, int n)
    {
        if (other.Type != Type || other.Width != Width || n > Capacity || n > other.Capacity) throw new ArgumentException("KV cache: copying between caches of different types, widths or too short");
        if (_floats is not null) Array.Copy(other._floats!, _floats, (long)n * Width);
        else Array.Copy(other._bytes!, _bytes!, (long)n * _rowBytes);
    }

    /// <summary>
    /// Columns [<paramref name="offset"/>, offset + <paramref name="count"/>) of positions [0, <paramref name="n"/>) as
    /// floats into dst [n, count] (one KV head's keys or values for attention): F32 copied, F16 and Q8_0 expanded to
    /// exactly the values BlockFormats.DequantizeRow gives (HalfDot.ToSingle, FloatQuantDot.Expand).
    /// </summary>
    public void Expand(int n, int offset, int count, float* dst)
    {
        if (n > Capacity || offset < 0 || offset + count > Width || (Type == KvCacheType.Q8_0 && (offset | count) % Q8Block != 0))
            throw new ArgumentException($"KV cache: columns {offset}..{offset + count} of {n} positions");
        if (_floats is not null)
        {
            for (int t = 0; t < n; t++) _floats.AsSpan(t * Width + offset, count).CopyTo(new Span<float>(dst + (long)t * count, count));
            return;
        }
        fixed (byte* p = _bytes)
            for (int t = 0; t < n; t++)
            {
                byte* row = p + (long)t * _rowBytes;
                if (Type == KvCacheType.F16) HalfDot.ToSingle((ushort*)row + offset, dst + (long)t * count, count);
                else FloatQuantDot.Expand(GgmlType.Q8_0, row + offset / Q8Block * Q8Bytes, dst + (long)t * count, count / Q8Block);
            }
    }
}
