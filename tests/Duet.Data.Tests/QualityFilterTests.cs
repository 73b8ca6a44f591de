// Each quality rule on a document built to fail it (and only it, where the rules allow), and prose that passes.
using Duet.Data.Filters;

namespace Duet.Data.Tests;

public class QualityFilterTests
{
    private static readonly QualityOptions O = new();

    private const string Prose =
        "The package manager keeps a database of the software that is installed on the system. When you ask it to install a new " +
        "program, it reads the list of dependencies and fetches each of them from the mirror that you have chosen.\n" +
        "Updates work in the same way: the manager compares the versions that are available with the ones on the disk, and then " +
        "downloads what has changed. A careful administrator reads the changelog before the upgrade starts.\n" +
        "Configuration files are never overwritten without a question, because local changes matter to the people who made them.";

    private const string ZhProse =
        "软件包管理器维护着一个数据库，记录系统中已经安装的软件。当你要求安装新程序时，它会读取依赖列表，并从你选择的镜像下载每一个依赖。\n" +
        "更新的过程也是一样的：管理器比较可用的版本和磁盘上的版本，然后下载发生变化的部分。细心的管理员会在升级之前阅读变更日志。\n" +
        "配置文件不会在没有询问的情况下被覆盖，因为本地的修改对做出修改的人来说很重要。";

    [Fact]
    public void CheckEnglish_OrdinaryProse_Passes() => Assert.Null(QualityFilter.CheckEnglish(Prose, O));

    [Fact]
    public void CheckChinese_OrdinaryProse_Passes() => Assert.Null(QualityFilter.CheckChinese(ZhProse, O));

    [Theory]
    [InlineData("too short to be a document at all.", "en.too_few_words")]
    [InlineData("lowercase", "en.mean_word_length")]
    [InlineData("hash", "en.symbol_ratio")]
    [InlineData("bullets", "en.bullet_lines")]
    [InlineData("ellipsis", "en.ellipsis_lines")]
    [InlineData("numbers", "en.alphabetic_words")]
    [InlineData("nostop", "en.stop_words")]
    [InlineData("nopunct", "en.punctuated_lines")]
    [InlineData("duplines", "en.duplicate_lines")]
    [InlineData("repeat", "en.top_2gram")]
    public void CheckEnglish_DocumentBuiltToFailARule_NamesThatRule(string kind, string expected)
    {
        string doc = kind switch
        {
            "lowercase" => string.Join(' ', Enumerable.Repeat("a an to of is it", 20)) + ".",
            "hash" => Prose + " " + string.Join(' ', Enumerable.Range(0, 20).Select(i => $"#tag{i}")),
            "bullets" => string.Join('\n', Prose.Split('\n').SelectMany(l => l.Split(". ")).Select(l => "- " + l)),
            "ellipsis" => string.Join('\n', Prose.Split('\n').SelectMany(l => l.Split(". ")).Select(l => l.TrimEnd('.') + "...")),
            "numbers" => Prose + " " + string.Join(' ', Enumerable.Range(0, 60).Select(i => (i * 7919).ToString())),
            "nostop" => string.Join(' ', Enumerable.Range(0, 80).Select(i => $"zq{i % 13}x")) + ".",
            "nopunct" => string.Join('\n', Prose.Replace(".", "").Replace(":", "").Split('\n')),
            "duplines" => Prose + "\n" + string.Join('\n', Enumerable.Repeat(Prose.Split('\n')[0], 3)),
            "repeat" => Prose.Split('\n')[0] + " " + string.Join(' ', Enumerable.Repeat("buy now", 60)) + ".",
            _ => kind,
        };
        Assert.Equal(expected, QualityFilter.CheckEnglish(doc, O));
    }

    [Fact]
    public void CheckChinese_RulesFire()
    {
        Assert.Equal("zh.too_few_characters", QualityFilter.CheckChinese("太短了。", O));
        Assert.Equal("zh.punctuation_share", QualityFilter.CheckChinese(ZhProse + string.Concat(Enumerable.Repeat("！？。…", 60)), O));
        Assert.Equal("zh.duplicate_lines", QualityFilter.CheckChinese(ZhProse + "\n" + string.Join('\n', Enumerable.Repeat(ZhProse.Split('\n')[0], 3)), O));
        Assert.Equal("zh.top_2gram", QualityFilter.CheckChinese(ZhProse + string.Concat(Enumerable.Repeat("点击点击", 60)) + "。", O));
    }
}
