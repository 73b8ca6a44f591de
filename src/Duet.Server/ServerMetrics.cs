// GET /metrics in the Prometheus text format (version 0.0.4): requests by route and status, tokens in and
// out, queue depth, busy slots and generation speed, from the server's counters and the engine's.
using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Duet.Inference.Serving;

namespace Duet.Server;

public sealed class ServerMetrics
{
    private readonly ConcurrentDictionary<(string Route, int Status), long> _requests = new();
    private long _embeddingTokens;

    public void CountRequest(string route, int status) => _requests.AddOrUpdate((route, status), 1, (_, n) => n + 1);
    public void CountEmbeddingTokens(int n) => Interlocked.Add(ref _embeddingTokens, n);

    public long Requests(string route, int status) => _requests.TryGetValue((route, status), out long n) ? n : 0;

    public string Render(ModelHost host)
    {
        var sb = new StringBuilder();
        void Metric(string name, string type, string help, IEnumerable<(string Labels, double Value)> values)
        {
            sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
            sb.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
            foreach (var (labels, value) in values)
                sb.Append(name).Append(labels).Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
        }
        Metric("duet_http_requests_total", "counter", "HTTP requests answered, by route and status code.",
            _requests.OrderBy(kv => kv.Key.Route, StringComparer.Ordinal).ThenBy(kv => kv.Key.Status)
                .Select(kv => ($"{{route=\"{kv.Key.Route}\",status=\"{kv.Key.Status}\"}}", (double)kv.Value)));
        Metric("duet_model_ready", "gauge", "1 when the model is loaded and serving.", [("", host.Ready ? 1 : 0)]);
        var m = host.Ready ? host.Engine.Metrics : new EngineMetrics();
        Metric("duet_prompt_tokens_total", "counter", "Prompt tokens of admitted generation requests (cached ones included).", [("", m.PromptTokensTotal)]);
        Metric("duet_prompt_tokens_cached_total", "counter", "Prompt tokens taken from a slot's KV cache instead of computed.", [("", m.CachedPromptTokensTotal)]);
        Metric("duet_completion_tokens_total", "counter", "Tokens generated.", [("", m.CompletionTokensTotal)]);
        Metric("duet_embedding_tokens_total", "counter", "Tokens embedded.", [("", Interlocked.Read(ref _embeddingTokens))]);
        Metric("duet_generation_requests_total", "counter", "Generation requests by outcome.",
            [("{outcome=\"started\"}", m.RequestsStartedTotal), ("{outcome=\"finished\"}", m.RequestsFinishedTotal), ("{outcome=\"cancelled\"}", m.RequestsCancelledTotal)]);
        Metric("duet_queue_depth", "gauge", "Requests waiting for a slot.", [("", m.QueueDepthNow)]);
        Metric("duet_slots_busy", "gauge", "Slots running a request.", [("", m.BusySlotCount)]);
        Metric("duet_slots_total", "gauge", "Slots (sequences decoded together).", [("", host.Ready ? host.Engine.Options.Slots : 0)]);
        Metric("duet_batch_steps_total", "counter", "Batched forward passes run.", [("", m.StepsTotal)]);
        Metric("duet_draft_tokens_total", "counter", "Speculative decoding: tokens drafted.", [("", m.DraftedTokensTotal)]);
        Metric("duet_draft_tokens_accepted_total", "counter", "Speculative decoding: drafted tokens the model's samples confirmed.", [("", m.AcceptedDraftTokensTotal)]);
        Metric("duet_busy_seconds_total", "counter", "Seconds with at least one sequence being computed.", [("", Math.Round(m.BusySeconds, 6))]);
        Metric("duet_generation_tokens_per_second", "gauge", "Generated tokens per busy second since start.", [("", Math.Round(m.TokensPerSecond, 3))]);
        return sb.ToString();
    }
}
