// Issue 6, acceptance 2: the chat page at / driven in headless Debian chromium through Playwright, against a real
// `duet serve` process: a message gets a streamed reply (the DOM is seen growing), Stop ends a reply mid-stream
// and the page returns to idle, and a screenshot is stored beside the test binaries (webchat.png).
using Duet.Server.Tests;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Duet.WebChat.Tests;

public sealed class WebChatTests(ITestOutputHelper output) : IAsyncLifetime, IDisposable
{
    private ServerProcess _server = null!;
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;

    public async Task InitializeAsync()
    {
        _server = new ServerProcess(TestModels.Path, "--api-key", "page-key", "--parallel", "2", "--ctx", "256", "--threads", "2");
        await _server.WaitReadyAsync(TimeSpan.FromSeconds(90));
        Assert.True(File.Exists("/usr/bin/chromium"), "Debian's chromium is needed: apt-get install chromium (./test.sh installs it when run as root)");
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = "/usr/bin/chromium",
            Headless = true,
            // The machine's network is closed: background connections would only be refused, many at a time.
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
    }

    public async Task DisposeAsync()
    {
        if (_browser is not null) await _browser.DisposeAsync();
        _playwright?.Dispose();
        _server?.Dispose();
    }

    public void Dispose() => _server?.Dispose();

    private async Task<IPage> OpenAsync()
    {
        var page = await _browser.NewPageAsync(new() { ViewportSize = new() { Width = 1000, Height = 760 } });
        var errors = new List<string>();
        page.PageError += (_, e) => errors.Add(e);
        await page.GotoAsync(_server.BaseUri.ToString());
        // Without the key the model list is refused; with it the page loads the models.
        await Assertions.Expect(page.Locator("#status")).ToContainTextAsync("API key");
        await page.ClickAsync("#toggle-settings");
        await page.FillAsync("#api-key", "page-key");
        await page.DispatchEventAsync("#api-key", "change");
        await Assertions.Expect(page.Locator("#model option")).ToHaveCountAsync(1);
        await page.FillAsync("#temperature", "0.8");
        await page.FillAsync("#seed", "7");
        await page.DispatchEventAsync("#seed", "change");
        Assert.Empty(errors);
        return page;
    }

    // Records the length of the last assistant message's text at every DOM change, to tell a streamed reply from one blob.
    private const string Watch = """
        () => {
          window.__lengths = [];
          new MutationObserver(() => {
            const m = [...document.querySelectorAll('.msg.assistant')].pop();
            if (m) window.__lengths.push(m.textContent.length);
          }).observe(document.getElementById('messages'), { childList: true, subtree: true, characterData: true });
        }
        """;

    [Fact]
    public async Task SendMessage_ShowsStreamedReply_AndScreenshot()
    {
        var page = await OpenAsync();
        await page.FillAsync("#max-tokens", "48");
        await page.EvaluateAsync(Watch);
        await page.FillAsync("#prompt", "What is Debian? 请简单介绍一下。");
        await page.ClickAsync("#send");
        var reply = page.Locator(".msg.assistant").Last;
        await Assertions.Expect(reply.Locator(".meta")).ToBeVisibleAsync(new() { Timeout = 60_000 });   // the reply has finished
        await Assertions.Expect(page.Locator(".msg.user")).ToHaveTextAsync("What is Debian? 请简单介绍一下。");
        var lengths = await page.EvaluateAsync<int[]>("() => window.__lengths");
        int distinct = lengths.Where(l => l > 0).Distinct().Count();
        Assert.True(distinct >= 3, $"the reply grew in {distinct} steps: not streamed ({string.Join(",", lengths)})");
        int updates = int.Parse(await reply.GetAttributeAsync("data-updates") ?? "0", System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(updates >= 2, $"{updates} streamed pieces");
        Assert.Contains("tokens", await reply.Locator(".meta").InnerTextAsync(), StringComparison.Ordinal);
        Assert.True(await page.Locator("#send").IsEnabledAsync());
        var shot = Path.Combine(AppContext.BaseDirectory, "webchat.png");
        await page.ScreenshotAsync(new() { Path = shot, FullPage = true });
        Assert.True(new FileInfo(shot).Length > 10_000);
        output.WriteLine($"screenshot: {shot}");
    }

    [Fact]
    public async Task Stop_MidStream_EndsTheReplyAndReturnsToIdle()
    {
        var page = await OpenAsync();
        await page.FillAsync("#max-tokens", "150");
        // A slow network, so that Stop lands while the reply is still streaming.
        var cdp = await page.Context.NewCDPSessionAsync(page);
        await cdp.SendAsync("Network.enable");
        await cdp.SendAsync("Network.emulateNetworkConditions", new Dictionary<string, object>
        {
            ["offline"] = false, ["latency"] = 0, ["downloadThroughput"] = 1500, ["uploadThroughput"] = -1,
        });
        await page.FillAsync("#prompt", "Tell me everything about free software.");
        await page.ClickAsync("#send");
        var reply = page.Locator(".msg.assistant").Last;
        await Assertions.Expect(page.Locator("#stop")).ToBeEnabledAsync();
        await Assertions.Expect(reply).ToHaveAttributeAsync("data-updates", new System.Text.RegularExpressions.Regex("^[2-9]|^[1-9][0-9]"), new() { Timeout = 60_000 });
        await page.ClickAsync("#stop");
        await Assertions.Expect(reply.Locator(".meta")).ToContainTextAsync("stopped");
        await Assertions.Expect(page.Locator("#stop")).ToBeDisabledAsync();
        await Assertions.Expect(page.Locator("#send")).ToBeEnabledAsync();
        Assert.True(await page.Locator("#prompt").IsEnabledAsync());
        // The page can go on: a second message gets a reply.
        await cdp.SendAsync("Network.emulateNetworkConditions", new Dictionary<string, object>
        {
            ["offline"] = false, ["latency"] = 0, ["downloadThroughput"] = -1, ["uploadThroughput"] = -1,
        });
        await page.FillAsync("#max-tokens", "8");
        await page.FillAsync("#prompt", "谢谢");
        await page.PressAsync("#prompt", "Enter");
        await Assertions.Expect(page.Locator(".msg.assistant")).ToHaveCountAsync(2);
        await Assertions.Expect(page.Locator(".msg.assistant").Last.Locator(".meta")).ToBeVisibleAsync(new() { Timeout = 60_000 });
    }

    [Fact]
    public async Task NewChat_MidReply_StartsCleanConversation()
    {
        var page = await OpenAsync();
        var bodies = new List<string>();
        page.Request += (_, r) => { if (r.Url.EndsWith("/v1/chat/completions", StringComparison.Ordinal) && r.PostData is { } d) bodies.Add(d); };
        await page.FillAsync("#max-tokens", "150");
        var cdp = await page.Context.NewCDPSessionAsync(page);
        await cdp.SendAsync("Network.enable");
        await cdp.SendAsync("Network.emulateNetworkConditions", new Dictionary<string, object>
        {
            ["offline"] = false, ["latency"] = 0, ["downloadThroughput"] = 1500, ["uploadThroughput"] = -1,
        });
        await page.FillAsync("#prompt", "First conversation.");
        await page.ClickAsync("#send");
        await Assertions.Expect(page.Locator(".msg.assistant").Last).ToHaveAttributeAsync("data-updates", new System.Text.RegularExpressions.Regex("^[1-9]"), new() { Timeout = 60_000 });
        await page.ClickAsync("#new-chat");
        await Assertions.Expect(page.Locator(".msg")).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator("#send")).ToBeEnabledAsync();
        await cdp.SendAsync("Network.emulateNetworkConditions", new Dictionary<string, object>
        {
            ["offline"] = false, ["latency"] = 0, ["downloadThroughput"] = -1, ["uploadThroughput"] = -1,
        });
        await page.FillAsync("#max-tokens", "4");
        await page.FillAsync("#prompt", "Second conversation.");
        await page.ClickAsync("#send");
        await Assertions.Expect(page.Locator(".msg.assistant .meta")).ToBeVisibleAsync(new() { Timeout = 60_000 });
        using var last = System.Text.Json.JsonDocument.Parse(bodies[^1]);
        var messages = last.RootElement.GetProperty("messages");
        Assert.Equal(1, messages.GetArrayLength());   // the stopped reply of the first conversation is not carried over
        Assert.Equal("Second conversation.", messages[0].GetProperty("content").GetString());
    }
}
