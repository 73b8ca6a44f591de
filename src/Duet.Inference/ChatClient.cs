// Duet in-process behind Microsoft.Extensions.AI: an IChatClient and an IEmbeddingGenerator over the
// InferenceEngine, so a .NET application talks to a local model the way it talks to any hosted one (and
// middleware such as caching, logging or function invocation composes around it). No HTTP involved.
// Tools: ChatOptions.Tools (AIFunction declarations) are offered to the model in its own format and its calls come
// back as FunctionCallContent, so ChatClientBuilder.UseFunctionInvocation() runs the functions and sends their
// FunctionResultContent back; ToolMode RequireAny / RequireSpecific constrain the reply to a valid call.
using System.Runtime.CompilerServices;
using Duet.Inference.Serving;
using Duet.Model;
using Duet.Tokenizers;
using Microsoft.Extensions.AI;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace Duet.Inference;

public sealed class DuetChatClient : IChatClient
{
    private readonly LlamaModel? _ownedModel;
    private readonly bool _ownsEngine;
    private readonly PromptFormatter _prompts;
    private readonly ChatClientMetadata _metadata;

    public InferenceEngine Engine { get; }
    public string ModelId { get; }

    /// <summary>Wraps an engine the caller owns (a server shares its engine this way).</summary>
    public DuetChatClient(InferenceEngine engine, string modelId)
    {
        Engine = engine;
        ModelId = modelId;
        _prompts = new PromptFormatter(engine.Tokenizer);
        _metadata = new ChatClientMetadata("duet", null, modelId);
    }

    private DuetChatClient(LlamaModel model, InferenceEngine engine, string modelId) : this(engine, modelId)
    {
        _ownedModel = model;
        _ownsEngine = true;
    }

    /// <summary>Loads a .gguf file or an HF folder with its tokenizer; the client owns them and frees them on Dispose.</summary>
    public static DuetChatClient Load(string path, EngineOptions? options = null)
    {
        var (model, tokenizer) = ModelLoader.Load(path);
        try
        {
            options ??= new EngineOptions { Slots = 1, Context = Math.Min(model.Config.ContextLength, 4096) };
            var engine = new InferenceEngine(model, tokenizer, options);
            string id = Path.GetFileNameWithoutExtension(Path.GetFullPath(path).TrimEnd(Path.DirectorySeparatorChar));
            return new DuetChatClient(model, engine, id);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public Tokenizer Tokenizer => Engine.Tokenizer;

    /// <summary>The request's tools as OpenAI's tools array (null: none, or ToolMode None).</summary>
    private static System.Text.Json.JsonElement? ToolsJson(ChatOptions? options)
    {
        if (options?.Tools is not { Count: > 0 } tools || options.ToolMode is NoneChatToolMode) return null;
        var array = new System.Text.Json.Nodes.JsonArray();
        foreach (var t in tools.OfType<AIFunctionDeclaration>())
            array.Add(new System.Text.Json.Nodes.JsonObject
            {
                ["type"] = "function",
                ["function"] = new System.Text.Json.Nodes.JsonObject
                {
                    ["name"] = t.Name, ["description"] = t.Description,
                    ["parameters"] = System.Text.Json.Nodes.JsonNode.Parse(t.JsonSchema.GetRawText()),
                },
            });
        return array.Count == 0 ? null : System.Text.Json.JsonDocument.Parse(array.ToJsonString()).RootElement.Clone();
    }

    /// <summary>A message as chat turns: its text, an assistant's FunctionCallContent as calls, each FunctionResultContent as a tool turn.</summary>
    private static IEnumerable<ChatTurn> Turns(AiChatMessage m)
    {
        var calls = m.Contents.OfType<FunctionCallContent>().Select(c => new Tools.ToolCall(c.CallId, c.Name,
            System.Text.Json.JsonSerializer.Serialize(c.Arguments ?? new Dictionary<string, object?>(), AIJsonUtilities.DefaultOptions))).ToList();
        var results = m.Contents.OfType<FunctionResultContent>().ToList();
        if (results.Count > 0)
        {
            foreach (var r in results)
                yield return new ChatTurn("tool", r.Result switch
                {
                    null => "",
                    string text => text,
                    System.Text.Json.JsonElement e => e.ValueKind == System.Text.Json.JsonValueKind.String ? e.GetString()! : e.GetRawText(),
                    var other => System.Text.Json.JsonSerializer.Serialize(other, AIJsonUtilities.DefaultOptions),
                }) { ToolCallId = r.CallId };
            yield break;
        }
        yield return new ChatTurn(m.Role.Value, m.Text) { ToolCalls = calls.Count > 0 ? calls : null };
    }

    /// <summary>The engine request for a conversation: prompt tokens from the chat template, options mapped from ChatOptions.</summary>
    public GenerationRequest CreateRequest(IEnumerable<AiChatMessage> messages, ChatOptions? options)
    {
        var list = new List<ChatTurn>();
        if (options?.Instructions is { Length: > 0 } instructions) list.Add(new ChatTurn("system", instructions));
        foreach (var m in messages) list.AddRange(Turns(m));
        var tools = ToolsJson(options);
        // A conversation longer than the context loses its oldest turns (system turns stay), as Ollama does, keeping
        // room for the reply: MaxOutputTokens, or a quarter of the context.
        int want = Math.Min(options?.MaxOutputTokens ?? Engine.Context / 4, Engine.Context / 2);
        var prompt = _prompts.Encode(list, tools);
        while (prompt.Length + want > Engine.Context && list.FindIndex(t => t.Role != "system") is int oldest && oldest >= 0 && list.Count(t => t.Role != "system") > 1)
        {
            list.RemoveAt(oldest);
            prompt = _prompts.Encode(list, tools);
        }
        int room = Engine.Context - prompt.Length;
        if (room < 1) throw new ArgumentException($"the conversation has {prompt.Length} tokens; the context holds {Engine.Context}");
        int max = options?.MaxOutputTokens is int m0 ? Math.Min(m0, room) : room;
        var sampling = new SamplingOptions
        {
            Temperature = options?.Temperature ?? 0.8f,
            TopP = options?.TopP is float p && p > 0 ? p : 0.95f,
            TopK = options?.TopK ?? 40,
            PresencePenalty = options?.PresencePenalty ?? 0,
            FrequencyPenalty = options?.FrequencyPenalty ?? 0,
            Seed = options?.Seed is long s ? unchecked((ulong)s) : (ulong)Random.Shared.NextInt64(),
        };
        Constrained.ITokenConstraint? constraint = options?.ResponseFormat is ChatResponseFormatJson json
            ? Constrained.JsonConstraints.Create(Engine, json.Schema)
            : null;
        if (tools is { } t && options!.ToolMode is RequiredChatToolMode required)
        {
            var call = Tools.ToolCallConstraint.Create(Engine.Tokenizer, Tools.ToolCallFormat.Detect(Engine.Tokenizer.ChatTemplate), Engine.Tokenizer.ChatTemplate,
                Tools.ToolCallConstraint.ReadTools(t), required.RequiredFunctionName, [.. Engine.StopTokens], Engine.Model.Config.Vocab,
                parallel: options.AllowMultipleToolCalls == true && required.RequiredFunctionName is null);
            if (max < call.MinimumLength) throw new ArgumentException($"{max} output tokens cannot hold the shortest call of the tools ({call.MinimumLength} bytes): raise MaxOutputTokens");
            constraint = call;
        }
        return new GenerationRequest
        {
            Prompt = prompt, MaxTokens = max, Sampling = sampling, Stop = options?.StopSequences?.ToArray() ?? [], Constraint = constraint,
        };
    }

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var request = CreateRequest(messages, options);
        var (text, _, result) = await Engine.Submit(request, cancellationToken).ReadAllAsync(cancellationToken).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        var message = new AiChatMessage(ChatRole.Assistant, text);
        bool called = false;
        if (ToolsJson(options) is not null)
        {
            var (content, calls) = Tools.ToolCallFormat.Parse(Tools.ToolCallFormat.Detect(Engine.Tokenizer.ChatTemplate), text, NewCallId);
            if (calls.Count > 0)
            {
                message = new AiChatMessage(ChatRole.Assistant, content.Length > 0 ? [new TextContent(content)] : []);
                foreach (var c in calls) message.Contents.Add(CallContent(c));
                called = true;
            }
        }
        return new ChatResponse(message)
        {
            ModelId = ModelId,
            CreatedAt = DateTimeOffset.UtcNow,
            FinishReason = called ? ChatFinishReason.ToolCalls : Finish(result.Reason),
            Usage = Usage(result),
        };
    }

    private static string NewCallId() => "call_" + Guid.NewGuid().ToString("N")[..24];

    private static FunctionCallContent CallContent(Tools.ToolCall c) =>
        new(c.Id, c.Name, System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, object?>>(c.Arguments, AIJsonUtilities.DefaultOptions));

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var request = CreateRequest(messages, options);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var stream = Engine.Submit(request, stop.Token);
        string id = Guid.NewGuid().ToString("N");
        // With tools, text that may be the start of a call is held back until the reply ends (ToolCallStream).
        var tools = ToolsJson(options) is null ? null : new Tools.ToolCallStream(Tools.ToolCallFormat.Detect(Engine.Tokenizer.ChatTemplate));
        try
        {
            await foreach (var t in stream.Tokens.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                var text = tools is null ? t.Text : tools.Push(t.Text);
                if (text.Length > 0)
                    yield return new ChatResponseUpdate(ChatRole.Assistant, text) { ModelId = ModelId, ResponseId = id };
            }
            var result = await stream.Result.ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            string trailing = result.TrailingText;
            IReadOnlyList<Tools.ToolCall> calls = [];
            if (tools is not null)
            {
                (trailing, calls) = tools.Finish(trailing, NewCallId);
            }
            var last = new ChatResponseUpdate(ChatRole.Assistant, trailing)
            {
                ModelId = ModelId, ResponseId = id, FinishReason = calls.Count > 0 ? ChatFinishReason.ToolCalls : Finish(result.Reason),
            };
            foreach (var c in calls) last.Contents.Add(CallContent(c));
            last.Contents.Add(new UsageContent(Usage(result)));
            yield return last;
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false); // a consumer that stops early gives the slot back
        }
    }

    private static ChatFinishReason? Finish(FinishReason r) => r switch
    {
        FinishReason.Stop => ChatFinishReason.Stop,
        FinishReason.Length => ChatFinishReason.Length,
        _ => null,
    };

    private static UsageDetails Usage(GenerationResult r) => new()
    {
        InputTokenCount = r.PromptTokens, OutputTokenCount = r.CompletionTokens, TotalTokenCount = r.PromptTokens + r.CompletionTokens,
        CachedInputTokenCount = r.CachedTokens,
    };

    /// <summary>An embedding generator over the same engine (the client keeps owning it).</summary>
    public IEmbeddingGenerator<string, Embedding<float>> AsEmbeddingGenerator() => new DuetEmbeddingGenerator(Engine, ModelId);

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return _metadata;
        if (serviceType.IsInstanceOfType(this)) return this;
        if (serviceType == typeof(InferenceEngine)) return Engine;
        return null;
    }

    public void Dispose()
    {
        if (_ownsEngine) Engine.Dispose();
        _ownedModel?.Dispose();
    }
}

/// <summary>Sentence embeddings (mean of the final hidden states, unit length) behind IEmbeddingGenerator.</summary>
public sealed class DuetEmbeddingGenerator(InferenceEngine engine, string modelId) : IEmbeddingGenerator<string, Embedding<float>>
{
    private readonly EmbeddingGeneratorMetadata _metadata = new("duet", null, modelId, engine.Model.Config.Dim);

    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        var result = new GeneratedEmbeddings<Embedding<float>>();
        long tokens = 0;
        foreach (var v in values)
        {
            var ids = engine.Tokenizer.Encode(v, addSpecialTokens: true);
            tokens += ids.Length;
            var e = await engine.EmbedAsync(ids, cancellationToken).ConfigureAwait(false);
            result.Add(new Embedding<float>(e) { ModelId = modelId, CreatedAt = DateTimeOffset.UtcNow });
        }
        result.Usage = new UsageDetails { InputTokenCount = tokens, TotalTokenCount = tokens };
        return result;
    }

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(EmbeddingGeneratorMetadata)) return _metadata;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <summary>The engine belongs to whoever made it; nothing to free here.</summary>
    public void Dispose() { }
}
