// The model behind the server: loaded in the background after Kestrel starts (so /health can say 503
// "loading" instead of the port being closed), then an InferenceEngine for generation and embeddings.
using Duet.Inference;
using Duet.Inference.Serving;
using Duet.Model;
using Duet.Tokenizers;

namespace Duet.Server;

public sealed class ModelHost : IDisposable
{
    private readonly ServerOptions _options;
    private volatile InferenceEngine? _engine;
    private volatile string? _error;
    private LlamaModel? _model;

    public ModelHost(ServerOptions options)
    {
        _options = options;
        Name = options.ModelName ?? ModelNameOf(options.ModelPath);
        Created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    }

    public string Name { get; }
    public long Created { get; }
    public string? Error => _error;
    public bool Ready => _engine is not null;
    public Task Loading { get; private set; } = Task.CompletedTask;
    public PromptFormatter? Prompts { get; private set; }
    /// <summary>Makes the constraint for response_format json_object (null schema) or json_schema.</summary>
    public Func<System.Text.Json.JsonElement?, Duet.Inference.Constrained.ITokenConstraint>? Constraints { get; private set; }

    /// <summary>The engine, or a 503 for the client while the model loads (or failed to).</summary>
    public InferenceEngine Engine => _engine ?? throw new ApiException(503,
        _error is null ? "the model is still loading; try again shortly" : $"the model failed to load: {_error}", code: _error is null ? "model_loading" : "model_failed");

    public static string ModelNameOf(string path)
    {
        var full = Path.GetFullPath(path).TrimEnd(Path.DirectorySeparatorChar);
        var name = Directory.Exists(full) ? Path.GetFileName(full) : Path.GetFileNameWithoutExtension(full);
        return string.IsNullOrEmpty(name) ? "duet" : name;
    }

    public void StartLoading() => Loading = Task.Run(Load);

    private void Load()
    {
        try
        {
            var (model, tokenizer) = ModelLoader.Load(_options.ModelPath);
            _model = model;
            model.QuantizedMath = _options.QuantizedMath;
            foreach (var (path, scale) in _options.Adapters) model.AddAdapter(Duet.Model.LoraAdapter.Read(path, model.Config), scale);
            int ctx = _options.Context ?? Math.Min(model.Config.ContextLength, 4096);
            if (ctx > model.Config.ContextLength)
                throw new ArgumentException($"--ctx {ctx} is longer than the model's context {model.Config.ContextLength}");
            Prompts = new PromptFormatter(tokenizer);
            var engine = new InferenceEngine(model, tokenizer, new EngineOptions { Slots = _options.Parallel, Context = ctx, MaxQueue = _options.MaxQueue });
            Constraints = schema => Duet.Inference.Constrained.JsonConstraints.Create(engine, schema);
            _engine = engine;
        }
        catch (Exception e)
        {
            // Whatever stops the load, /health says so (503 "error" with the message) instead of "loading" forever.
            _error = e.Message;
            _model?.Dispose();
            _model = null;
        }
    }

    public void Dispose()
    {
        _engine?.Dispose();
        _model?.Dispose();
    }
}
