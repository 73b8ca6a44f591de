// Reads SentencePiece's tokenizer.model: a protobuf ModelProto (sentencepiece_model.proto), parsed by hand
// for the few fields a BPE tokenizer needs. Every length is checked against the bytes left, so a
// truncated or hostile file gives one TokenizerFormatException that says where it broke.
//
//   ModelProto      { repeated SentencePiece pieces = 1; TrainerSpec trainer_spec = 2; NormalizerSpec normalizer_spec = 3; }
//   SentencePiece   { string piece = 1; float score = 2; Type type = 3 (NORMAL=1 UNKNOWN=2 CONTROL=3 USER_DEFINED=4 BYTE=6 UNUSED=5); }
//   TrainerSpec     { ModelType model_type = 3 (UNIGRAM=1 BPE=2 WORD=3 CHAR=4); bool byte_fallback = 35; int32 unk_id = 40, bos_id = 41, eos_id = 42, pad_id = 43; }
//   NormalizerSpec  { string name = 1; bytes precompiled_charsmap = 2; bool add_dummy_prefix = 3 [true];
//                     bool remove_extra_whitespaces = 4 [true]; bool escape_whitespaces = 5 [true]; }
using System.Buffers.Binary;
using System.Text;
using Duet.Tokenizers.Decoders;
using Duet.Tokenizers.Models;
using Duet.Tokenizers.Normalizers;
using Duet.Tokenizers.PostProcessors;

namespace Duet.Tokenizers.Loaders;

public static class SentencePieceModel
{
    public static Tokenizer Load(string path)
    {
        byte[] data;
        try { data = File.ReadAllBytes(path); }
        catch (IOException e) { throw new TokenizerFormatException($"{path}: cannot read: {e.Message}", e); }
        try { return Parse(data); }
        catch (TokenizerFormatException e) { throw new TokenizerFormatException($"{path}: {e.Message}", e); }
    }

    public static Tokenizer Parse(ReadOnlySpan<byte> data)
    {
        var pieces = new List<string>();
        var scores = new List<float>();
        var types = new List<TokenType>();
        int modelType = 1; // UNIGRAM is the proto default
        bool byteFallback = false, addDummyPrefix = true, removeExtra = true, escapeWs = true;
        int unkId = 0, bosId = 1, eosId = 2;
        string normName = "";
        int charsmapLength = 0;

        var r = new ProtoReader(data, 0, "ModelProto");
        while (r.Next(out int field, out int wire))
        {
            switch (field)
            {
                case 1 when wire == 2:
                    var pr = r.Message("SentencePiece");
                    string piece = ""; float score = 0; int type = 1;
                    while (pr.Next(out int f, out int w))
                    {
                        if (f == 1 && w == 2) piece = pr.String();
                        else if (f == 2 && w == 5) score = pr.Fixed32Float();
                        else if (f == 3 && w == 0) type = (int)pr.Varint();
                        else pr.Skip(w);
                    }
                    if (type is < 1 or > 6) throw new TokenizerFormatException($"piece #{pieces.Count} '{piece}' has unknown type {type}");
                    pieces.Add(piece); scores.Add(score); types.Add((TokenType)type);
                    break;
                case 2 when wire == 2:
                    var tr = r.Message("TrainerSpec");
                    while (tr.Next(out int f, out int w))
                    {
                        if (w != 0) { tr.Skip(w); continue; }
                        long v = (long)tr.Varint();
                        switch (f)
                        {
                            case 3: modelType = (int)v; break;
                            case 35: byteFallback = v != 0; break;
                            case 40: unkId = (int)v; break;
                            case 41: bosId = (int)v; break;
                            case 42: eosId = (int)v; break;
                        }
                    }
                    break;
                case 3 when wire == 2:
                    var nr = r.Message("NormalizerSpec");
                    while (nr.Next(out int f, out int w))
                    {
                        if (f == 1 && w == 2) normName = nr.String();
                        else if (f == 2 && w == 2) charsmapLength = nr.Bytes().Length;
                        else if (f is 3 or 4 or 5 && w == 0)
                        {
                            bool b = nr.Varint() != 0;
                            if (f == 3) addDummyPrefix = b; else if (f == 4) removeExtra = b; else escapeWs = b;
                        }
                        else nr.Skip(w);
                    }
                    break;
                default:
                    r.Skip(wire);
                    break;
            }
        }

        if (pieces.Count == 0) throw new TokenizerFormatException("no pieces: this is not a SentencePiece model");
        if (modelType != 2)
            throw new TokenizerFormatException($"model_type {modelType} ({(modelType == 1 ? "unigram" : modelType == 3 ? "word" : modelType == 4 ? "char" : "unknown")}) is not supported: only BPE models");
        if (charsmapLength > 0 && normName != "identity")
            throw new TokenizerFormatException($"normalization rule '{normName}' (a precompiled charsmap) is not supported: only 'identity', as LLaMA, Yi and Mistral use");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < pieces.Count; i++)
            if (!seen.Add(pieces[i])) throw new TokenizerFormatException($"piece '{pieces[i]}' is defined twice (id {i})");
        if (types.Contains(TokenType.Byte) && !byteFallback)
            throw new TokenizerFormatException("the model has byte pieces but trainer_spec.byte_fallback is false");

        int unk = types.IndexOf(TokenType.Unknown);
        var model = BpeModel.FromScores(pieces.ToArray(), types.ToArray(), scores.ToArray(), unk, byteFallback);
        // Control pieces (<s>, </s>) are added tokens matched only with parse-special, as in llama.cpp;
        // SentencePiece itself never matches them in text, which is our default for this format.
        var added = new List<AddedToken>();
        for (int i = 0; i < pieces.Count; i++)
            if (types[i] == TokenType.Control) added.Add(new AddedToken(i, pieces[i], Special: true));
        bool Valid(int id) => id >= 0 && id < pieces.Count;
        var post = new TemplatePostProcessor(Valid(bosId) ? [bosId] : [], []);
        return new Tokenizer(model, new SentencePieceNormalizer(addDummyPrefix, removeExtra, escapeWs), null, post,
            new AddedVocabulary(added), DecoderKind.SentencePiece, TokenizerSource.SentencePieceModel, parseSpecialByDefault: false)
        {
            BosId = Valid(bosId) ? bosId : -1,
            EosId = Valid(eosId) ? eosId : -1,
        };
    }

    /// <summary>A bounds-checked protobuf wire-format reader over one message.</summary>
    private ref struct ProtoReader(ReadOnlySpan<byte> data, int baseOffset, string message)
    {
        private readonly ReadOnlySpan<byte> _d = data;
        private int _p;

        public bool Next(out int field, out int wire)
        {
            field = wire = 0;
            if (_p >= _d.Length) return false;
            ulong key = Varint();
            field = (int)(key >> 3);
            wire = (int)(key & 7);
            if (field == 0) throw Error("field number 0");
            return true;
        }

        public ulong Varint()
        {
            ulong v = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (_p >= _d.Length) throw Error("varint runs past the end");
                byte b = _d[_p++];
                v |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return v;
            }
            throw Error("varint longer than 10 bytes");
        }

        public ReadOnlySpan<byte> Bytes()
        {
            ulong n = Varint();
            if (n > (ulong)(_d.Length - _p)) throw Error($"length {n} exceeds the {_d.Length - _p} bytes left");
            var s = _d.Slice(_p, (int)n);
            _p += (int)n;
            return s;
        }

        public string String()
        {
            int at = baseOffset + _p;
            var b = Bytes();
            if (!System.Text.Unicode.Utf8.IsValid(b)) throw new TokenizerFormatException($"{message} at byte {at}: string is not valid UTF-8");
            return Encoding.UTF8.GetString(b);
        }

        public ProtoReader Message(string name)
        {
            var b = Bytes();
            return new ProtoReader(b, baseOffset + _p - b.Length, name);
        }

        public float Fixed32Float()
        {
            if (_d.Length - _p < 4) throw Error("fixed32 runs past the end");
            float f = BinaryPrimitives.ReadSingleLittleEndian(_d[_p..]);
            _p += 4;
            return f;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: if (_d.Length - _p < 8) throw Error("fixed64 runs past the end"); _p += 8; break;
                case 2: Bytes(); break;
                case 5: if (_d.Length - _p < 4) throw Error("fixed32 runs past the end"); _p += 4; break;
                default: throw Error($"unsupported wire type {wire}");
            }
        }

        private readonly TokenizerFormatException Error(string what) =>
            new($"truncated or corrupt protobuf in {message} at byte {baseOffset + _p}: {what}");
    }
}
