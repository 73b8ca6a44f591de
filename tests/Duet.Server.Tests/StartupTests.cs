// A model that cannot be loaded does not take the server down: /health says why (503 "error") and the API answers
// 503 instead of hanging or crashing.
using System.Net;
using System.Text.Json;

namespace Duet.Server.Tests;

public sealed class StartupTests
{
    [Fact]
    public async Task BrokenModelFile_HealthSaysErrorAndApiIs503()
    {
        var dir = Directory.CreateTempSubdirectory("duet-broken-").FullName;
        try
        {
            var path = Path.Combine(dir, "broken.gguf");
            await File.WriteAllBytesAsync(path, [.. "GGUF"u8, 3, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 127]); // header with a lying tensor count
            using var server = new ServerProcess(path);
            using var http = new HttpClient { BaseAddress = server.BaseUri, Timeout = TimeSpan.FromSeconds(10) };
            JsonElement health = default;
            for (int i = 0; i < 300; i++)
            {
                try
                {
                    using var r = await http.GetAsync("/health");
                    health = JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.Clone();
                    Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
                    if (health.GetProperty("status").GetString() == "error") break;
                }
                catch (HttpRequestException) { }
                await Task.Delay(100);
            }
            Assert.Equal("error", health.GetProperty("status").GetString());
            Assert.False(string.IsNullOrWhiteSpace(health.GetProperty("message").GetString()));
            using var chat = await http.PostAsync("/v1/chat/completions", new StringContent("""{"messages":[{"role":"user","content":"hi"}]}"""));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, chat.StatusCode);
            Assert.Contains("failed to load", await chat.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            Assert.False(server.Exited);
        }
        finally { Directory.Delete(dir, true); }
    }
}
