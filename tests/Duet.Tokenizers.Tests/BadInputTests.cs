// Broken tokenizer files give one TokenizerFormatException whose message names the problem.
using System.Text;
using Duet.Formats.Gguf;
using Duet.Tokenizers.Loaders;

namespace Duet.Tokenizers.Tests;

public class BadInputTests
{
    private static TokenizerFormatException JsonError(string json) =>
        Assert.Throws<TokenizerFormatException>(() => TokenizerJson.Parse(Encoding.UTF8.GetBytes(json)));

    [Fact]
    public void TokenizerJson_Malformed_NamesTheProblem()
    {
        Assert.Contains("not valid JSON", JsonError("{\"model\": {\"type\": \"BPE\",").Message);
        Assert.Contains("missing 'model'", JsonError("{}").Message);
        Assert.Contains("'Unigram' is not supported", JsonError("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}").Message);
        Assert.Contains("model.vocab['a']", JsonError("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}, \"merges\": []}}").Message);
        Assert.Contains("merge #0 'a c'", JsonError("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a c\"]}, \"decoder\": {\"type\": \"ByteLevel\"}}").Message);
        Assert.Contains("gives id 0 to both", JsonError("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}}").Message);
        Assert.Contains("pre-tokenizer type 'Mystery'", JsonError("{\"pre_tokenizer\": {\"type\": \"Mystery\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"decoder\": {\"type\": \"ByteLevel\"}}").Message);
        Assert.Contains("no decoder", JsonError("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}").Message);
    }

    [Fact]
    public void SentencePieceModel_TruncatedAnywhere_GivesFormatErrorOnly()
    {
        var bytes = File.ReadAllBytes(RepoFiles.TestData("spm-bpe.model"));
        var full = SentencePieceModel.Parse(bytes);
        Assert.Equal(8000, full.VocabSize);
        int checkedCuts = 0;
        for (int cut = 0; cut < bytes.Length; cut += cut < 512 ? 1 : 997)
        {
            try
            {
                var t = SentencePieceModel.Parse(bytes.AsSpan(0, cut));
                Assert.True(t.VocabSize < 8000, $"a file cut at {cut} bytes loaded all 8000 pieces");
            }
            catch (TokenizerFormatException e)
            {
                Assert.False(string.IsNullOrWhiteSpace(e.Message));
            }
            checkedCuts++;
        }
        Assert.True(checkedCuts > 600);
        var e2 = Assert.Throws<TokenizerFormatException>(() => SentencePieceModel.Parse(bytes.AsSpan(0, bytes.Length / 2)));
        Assert.Contains("truncated or corrupt protobuf", e2.Message);
    }

    [Fact]
    public void GgufVocabulary_ArraysOfDifferentLengths_SaysTheyDisagree()
    {
        var md = new List<KeyValuePair<string, GgufValue>>
        {
            new(GgufKeys.TokenizerModel, GgufValue.Of("llama")),
            new(GgufKeys.TokenizerTokens, GgufValue.Of(new[] { "<unk>", "<s>", "</s>", "a" })),
            new(GgufKeys.TokenizerScores, GgufValue.Of(new float[] { 0, 0, 0 })),
            new(GgufKeys.TokenizerTokenType, GgufValue.Of(new[] { 2, 3, 3, 1 })),
        };
        var file = GgufFile.Parse(new GgufWriter(md).ToArray());
        var e = Assert.Throws<TokenizerFormatException>(() => GgufVocabulary.Load(file.Metadata));
        Assert.Contains("'tokenizer.ggml.scores' has 3 entries but 'tokenizer.ggml.tokens' has 4", e.Message);
        Assert.Contains("disagree in length", e.Message);
    }

    [Fact]
    public void GgufVocabulary_MissingOrUnknownModel_IsNamed()
    {
        var none = GgufFile.Parse(new GgufWriter([new(GgufKeys.GeneralArchitecture, GgufValue.Of("llama"))]).ToArray());
        Assert.Contains("has no tokenizer", Assert.Throws<TokenizerFormatException>(() => GgufVocabulary.Load(none.Metadata)).Message);
        var bert = GgufFile.Parse(new GgufWriter([
            new(GgufKeys.TokenizerModel, GgufValue.Of("bert")), new(GgufKeys.TokenizerTokens, GgufValue.Of(new[] { "a" }))]).ToArray());
        Assert.Contains("'bert' is not supported", Assert.Throws<TokenizerFormatException>(() => GgufVocabulary.Load(bert.Metadata)).Message);
    }
}
