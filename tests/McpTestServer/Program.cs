// An MCP server over stdio with two tools (get_weather, add); every call is appended to $MCP_TEST_LOG as a line.
using System.ComponentModel;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Server;

var builder = Host.CreateApplicationBuilder(args);
builder.Logging.ClearProviders(); // stdout is the protocol's
builder.Services.AddMcpServer().WithStdioServerTransport().WithTools<McpTestServer.TestTools>();
await builder.Build().RunAsync();

namespace McpTestServer
{
    [McpServerToolType]
    public sealed class TestTools
    {
        private static void Log(string line)
        {
            if (Environment.GetEnvironmentVariable("MCP_TEST_LOG") is { Length: > 0 } path) File.AppendAllText(path, line + "\n");
        }

        [McpServerTool(Name = "get_weather"), Description("The current weather in a city")]
        public static string GetWeather([Description("the city")] string city)
        {
            Log($"get_weather {city}");
            return $"22 C and sunny in {city}";
        }

        [McpServerTool(Name = "add"), Description("The sum of two integers")]
        public static long Add(long a, long b)
        {
            Log($"add {a} {b}");
            return a + b;
        }
    }
}
