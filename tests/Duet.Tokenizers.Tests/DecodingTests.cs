// Streaming decoding and byte-exact round trips of input that is not valid UTF-8.
namespace Duet.Tokenizers.Tests;

public class DecodingTests
{
    [Theory]
    [InlineData("llama2")]
    [InlineData("llama3")]
    [InlineData("spm-bpe")]
    public void StreamingDecoder_ChineseTokenByToken_NeverEmitsBrokenCharacters(string name)
    {
        var tok = name == "spm-bpe" ? Tokenizer.Load(RepoFiles.TestData("spm-bpe.model")) : Tokenizer.Load(RepoFiles.LenmlTokenizer(name));
        const string text = "中文流式解码：𠀀𪛖 罕见字，emoji 👨‍👩‍👧‍👦 和 café。";
        var ids = tok.Encode(text);
        // The test is only meaningful if some character is split over several tokens.
        Assert.Contains(ids, id => tok.Decoder.BytesOf(id).Length > 0 && tok.Decoder.BytesOf(id).Length < 3 && tok.Decoder.BytesOf(id)[0] >= 0x80);
        var stream = tok.CreateStreamingDecoder();
        var pieces = ids.Select(stream.Push).ToList();
        pieces.Add(stream.Flush());
        Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD'));
        Assert.Equal(text, string.Concat(pieces));
    }

    /// <summary>
    /// Generated text continues its prompt: primed with the prompt, the streamed pieces are exactly what the
    /// decode of prompt + continuation adds (the leading space of "▁world" kept), as llama.cpp prints them.
    /// </summary>
    [Theory]
    [InlineData("llama2")]
    [InlineData("llama3")]
    [InlineData("spm-bpe")]
    public void StreamingDecoder_PrimedWithPrompt_StreamsTheContinuation(string name)
    {
        var tok = name == "spm-bpe" ? Tokenizer.Load(RepoFiles.TestData("spm-bpe.model")) : Tokenizer.Load(RepoFiles.LenmlTokenizer(name));
        var prompt = tok.Encode("Hello");
        var all = tok.Encode("Hello world 你好");
        Assert.Equal(prompt, all.Take(prompt.Length));
        var stream = tok.CreateStreamingDecoder();
        stream.Prime(prompt);
        var pieces = all.Skip(prompt.Length).Select(stream.Push).Append(stream.Flush());
        Assert.Equal(" world 你好", string.Concat(pieces));
    }

    [Fact]
    public void StreamingDecoder_IncompleteTail_BecomesReplacementOnFlush()
    {
        var tok = Tokenizer.Load(RepoFiles.TestData("spm-bpe.model"));
        var stream = tok.CreateStreamingDecoder();
        int e4 = tok.TokenToId("<0xE4>")!.Value;
        Assert.Equal("", stream.Push(e4));
        Assert.Equal("\uFFFD", stream.Flush());
    }

    [Theory]
    [InlineData("llama2")]
    [InlineData("llama3")]
    [InlineData("qwen3")]
    [InlineData("spm-bpe")]
    public void EncodeUtf8_InvalidBytes_GoThroughByteFallbackAndComeBackExactly(string name)
    {
        var tok = name == "spm-bpe" ? Tokenizer.Load(RepoFiles.TestData("spm-bpe.model")) : Tokenizer.Load(RepoFiles.LenmlTokenizer(name));
        byte[] input = [.. "ok "u8, 0xFF, 0xFE, .. " 中"u8, 0xE4, 0xB8, .. " end"u8, 0xC0, 0xAF, 0x80];
        var ids = tok.EncodeUtf8(input);
        Assert.Equal(input, tok.DecodeToBytes(ids));
        if (tok.Decoder.Kind == Decoders.DecoderKind.SentencePiece)
            Assert.Contains(tok.TokenToId("<0xFF>")!.Value, ids);
    }
}
