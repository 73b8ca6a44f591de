// The character n-grams of the language model: words are maximal runs of letters (char.IsLetter), lowercased
// (invariant culture), each padded with a boundary marker on both sides; a word w gives its letters (1-grams)
// and every 2..MaxOrder-character window of "_w_". So "der" gives d e r _d de er r_ _de der er_ _der der_ (to
// 4-grams). Digits, punctuation and anything else only separate words.
// An n-gram of up to four UTF-16 characters packs into one ulong, 16 bits a character, first character highest:
// distinct n-grams give distinct keys (no character is 0), so counting and scoring hash integers and never
// allocate. The boundary marker is ' ' inside keys (never a letter) and '_' in text form (never a letter either).
namespace Duet.Data.LanguageId;

public static class CharNgrams
{
    /// <summary>Longest n-gram (characters, markers included); four 16-bit characters fill a ulong.</summary>
    public const int MaxOrder = 4;

    /// <summary>The word boundary marker inside keys.</summary>
    public const char Marker = ' ';

    /// <summary>The word boundary marker in the text form of an n-gram (profile files, the reference scorer).</summary>
    public const char MarkerText = '_';

    /// <summary>Whether c is a letter (char.IsLetter), and its invariant lowercase; ASCII without a table lookup.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static bool IsLetter(char c, out char lower)
    {
        if (c < 128)
        {
            lower = (char)(c | 0x20);
            return (uint)(lower - 'a') <= 'z' - 'a';
        }
        lower = char.ToLowerInvariant(c);
        return char.IsLetter(c);
    }

    /// <summary>The n-gram keys of a text, in order, with their orders.</summary>
    public static KeyEnumerator Keys(ReadOnlySpan<char> text, int maxOrder = MaxOrder) => new(text, maxOrder);

    /// <summary>Number of characters in a key.</summary>
    public static int Order(ulong key) => key == 0 ? 0 : (64 - System.Numerics.BitOperations.LeadingZeroCount(key) + 15) / 16;

    /// <summary>The text form of a key ('_' for the marker).</summary>
    public static string ToText(ulong key)
    {
        int n = Order(key);
        Span<char> s = stackalloc char[MaxOrder];
        for (int i = 0; i < n; i++)
        {
            char c = (char)(key >> (16 * (n - 1 - i)));
            s[i] = c == Marker ? MarkerText : c;
        }
        return new string(s[..n]);
    }

    /// <summary>The key of an n-gram's text form ('_' for the marker), 1 to MaxOrder characters.</summary>
    public static ulong FromText(ReadOnlySpan<char> ngram)
    {
        if (ngram.Length is 0 or > MaxOrder) throw new ArgumentException($"an n-gram has 1 to {MaxOrder} characters: '{ngram}'", nameof(ngram));
        ulong key = 0;
        foreach (char c in ngram) key = (key << 16) | (c == MarkerText ? Marker : c);
        return key;
    }

    /// <summary>
    /// The n-grams of a text as strings, '_' for the marker: the plain definition, for tests and for the
    /// reference scorer that the fast one is checked against.
    /// </summary>
    public static List<string> Reference(string text, int maxOrder = MaxOrder)
    {
        var result = new List<string>();
        int i = 0;
        while (i < text.Length)
        {
            if (!char.IsLetter(text[i])) { i++; continue; }
            int start = i;
            while (i < text.Length && char.IsLetter(text[i])) i++;
            var word = LowerEachChar(text.AsSpan(start, i - start));
            foreach (char c in word) result.Add(c.ToString());
            var padded = MarkerText + word + MarkerText;
            for (int n = 2; n <= maxOrder; n++)
                for (int k = 0; k + n <= padded.Length; k++) result.Add(padded.Substring(k, n));
        }
        return result;
    }

    private static string LowerEachChar(ReadOnlySpan<char> s)
    {
        Span<char> buf = s.Length <= 256 ? stackalloc char[s.Length] : new char[s.Length];
        for (int i = 0; i < s.Length; i++) buf[i] = char.ToLowerInvariant(s[i]);
        return new string(buf);
    }

    /// <summary>Walks a text's n-gram keys without allocating: <c>foreach (var (key, order) in CharNgrams.Keys(text))</c>.</summary>
    public ref struct KeyEnumerator
    {
        private readonly ReadOnlySpan<char> _text;
        private readonly int _maxOrder;
        private int _i;          // next character of the text
        private ulong _window;   // the last characters of the current padded word, newest lowest
        private int _length;     // characters of the current padded word pushed so far (the start marker included)
        private int _next, _top; // orders still to emit at the current position
        private bool _inWord;

        internal KeyEnumerator(ReadOnlySpan<char> text, int maxOrder)
        {
            if (maxOrder is < 1 or > MaxOrder) throw new ArgumentOutOfRangeException(nameof(maxOrder), $"1..{MaxOrder}");
            _text = text;
            _maxOrder = maxOrder;
            _next = 1; _top = 0; // nothing to emit before the first word
            Current = default;
        }

        public (ulong Key, int Order) Current { get; private set; }

        public readonly KeyEnumerator GetEnumerator() => this;

        public bool MoveNext()
        {
            while (true)
            {
                if (_next <= _top)
                {
                    int n = _next++;
                    Current = (n == 4 ? _window : _window & ((1UL << (16 * n)) - 1), n);
                    return true;
                }
                if (_inWord)
                {
                    if (_i < _text.Length && IsLetter(_text[_i], out char lower))
                    {
                        _window = (_window << 16) | lower;
                        _i++;
                        _length++;
                        _next = 1;
                    }
                    else
                    {
                        _window = (_window << 16) | Marker;
                        _length++;
                        _inWord = false;
                        _next = 2; // the marker alone is no 1-gram
                    }
                    _top = Math.Min(_length, _maxOrder);
                    continue;
                }
                while (_i < _text.Length && !IsLetter(_text[_i], out _)) _i++;
                if (_i == _text.Length) return false;
                _window = Marker;
                _length = 1;
                _inWord = true;
                _next = 1; _top = 0; // nothing ends at the start marker
            }
        }
    }
}
