// Issue 19, acceptance 6: `duet chat --mcp` starts a Model Context Protocol server over stdio (tests/McpTestServer,
// written with the MCP SDK), lists its tools, and, with the call forced by --tool-choice on a random-weight model
// (the decoder follows the tool's schema), runs the call on the server and gives the result back to the model.
using System.Diagnostics;
using Duet.Tests;

namespace Duet.Server.Tests;

public sealed class McpChatTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("duet-mcp-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static string ServerDll() => new[] { "Release", "Debug" }
        .Select(c => Path.Combine(Repo.Root, "tests", "McpTestServer", "bin", c, "net10.0", "McpTestServer.dll")).First(File.Exists);

    private async Task<(int Exit, string Out, string Err)> Chat(string input, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Repo.DuetDll());
        foreach (var a in new[] { "chat", "--model", TestModels.LongContextPath, "--ctx-size", "2048", "-t", "2" }.Concat(args)) psi.ArgumentList.Add(a);
        psi.Environment["MCP_TEST_LOG"] = Path.Combine(_dir, "calls.log");
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.StandardInput.WriteAsync(input);
        p.StandardInput.Close();
        Assert.True(p.WaitForExit(120_000), "duet chat --mcp did not finish in 2 minutes");
        return (p.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public async Task Chat_WithAnMcpServer_ListsItsToolsAndRunsAForcedCall()
    {
        var (exit, output, err) = await Chat("What is the weather in Paris?\n\n",
            "--mcp", $"dotnet \"{ServerDll()}\"", "--tool-choice", "get_weather", "--temp", "1", "--seed", "7", "-n", "120");
        Assert.True(exit == 0, err);
        Assert.Contains("tool get_weather", err);                      // listed from the server
        Assert.Contains("tool add", err);
        Assert.Contains("[call get_weather({\"city\":", err);           // the model's call, valid against the schema
        var log = File.ReadAllLines(Path.Combine(_dir, "calls.log"));
        var called = Assert.Single(log);                               // run once on the MCP server
        Assert.StartsWith("get_weather ", called, StringComparison.Ordinal);
        Assert.Contains($"[result 22 C and sunny in {called["get_weather ".Length..]}]", err); // its result went back to the model
        Assert.NotNull(output);
    }

    [Fact]
    public async Task Chat_BadMcpServerOrToolChoice_SaysWhat()
    {
        var (exit, _, err) = await Chat("hi\n\n", "--mcp", "/nonexistent/server --x");
        Assert.NotEqual(0, exit);
        Assert.Contains("--mcp \"/nonexistent/server --x\": the server did not start", err);
        (exit, _, err) = await Chat("hi\n\n", "--mcp", $"dotnet \"{ServerDll()}\"", "--tool-choice", "get_time");
        Assert.NotEqual(0, exit);
        Assert.Contains("--tool-choice get_time: no such tool (the servers offer get_weather, add)", err);
    }
}
