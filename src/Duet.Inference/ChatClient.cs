// Duet in-process behind Microsoft.Extensions.AI: an IChatClient and an IEmbeddingGenerator over the
// InferenceEngine, so a .NET application talks to a local model the way it talks to any hosted one (and
// middleware such as caching, logging or function invocation composes around it). No HTTP involved.
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

    /// <summary>The engine request for a conversation: prompt tokens from the chat template, options mapped from ChatOptions.</summary>
    public GenerationRequest CreateRequest(IEnumerable<AiChatMessage> messages, ChatOptions? options)
    {
        var list = new List<ChatTurn>();
        if (options?.Instructions is { Length: > 0 } instructions) list.Add(new ChatTurn("system", instructions));
        foreach (var m in messages) list.Add(new ChatTurn(m.Role.Value, m.Text));
        // A conversation longer than the context loses its oldest turns (system turns stay), as Ollama does, keeping
        // room for the reply: MaxOutputTokens, or a quarter of the context.
        int want = Math.Min(options?.MaxOutputTokens ?? Engine.Context / 4, Engine.Context / 2);
        var prompt = _prompts.Encode(list);
        while (prompt.Length + want > Engine.Context && list.FindIndex(t => t.Role != "system") is int oldest && oldest >= 0 && list.Count(t => t.Role != "system") > 1)
        {
            list.RemoveAt(oldest);
            prompt = _prompts.Encode(list);
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
        return new ChatResponse(new AiChatMessage(ChatRole.Assistant, text))
        {
            ModelId = ModelId,
            CreatedAt = DateTimeOffset.UtcNow,
            FinishReason = Finish(result.Reason),
            Usage = Usage(result),
        };
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var request = CreateRequest(messages, options);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var stream = Engine.Submit(request, stop.Token);
        string id = Guid.NewGuid().ToString("N");
        try
        {
            await foreach (var t in stream.Tokens.ReadAllAsync(cancellationToken).ConfigureAwait(false))
                if (t.Text.Length > 0)
                    yield return new ChatResponseUpdate(ChatRole.Assistant, t.Text) { ModelId = ModelId, ResponseId = id };
            var result = await stream.Result.ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            var last = new ChatResponseUpdate(ChatRole.Assistant, result.TrailingText)
            {
                ModelId = ModelId, ResponseId = id, FinishReason = Finish(result.Reason),
            };
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
