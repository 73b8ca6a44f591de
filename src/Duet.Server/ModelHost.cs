// A model behind the server: loaded in the background (the first one right after Kestrel starts, so /health can say
// 503 "loading" instead of the port being closed; the others on their first request), then an InferenceEngine for
// generation and embeddings. Requests hold a lease while they use it; an idle model can be unloaded (ModelRegistry:
// after keep_alive, or to make room for another) and loads again on its next request.
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
    private LlamaModel? _model, _draft;
    private readonly object _gate = new();
    private bool _started;
    private int _active;
    private long _lastUsed = DateTime.UtcNow.Ticks;

    /// <summary>The first model of the options (--model PATH, named by --name or its file).</summary>
    public ModelHost(ServerOptions options) : this(options, options.ModelName ?? ModelNameOf(options.ModelPath), options.ModelPath) { }

    /// <param name="path">the model file or folder; "BASE+ADAPTER[:SCALE]+..." serves the base with LoRA adapters applied
    /// at run time (a model of its own name beside the plain base: the request's model chooses the adapter)</param>
    public ModelHost(ServerOptions options, string name, string path)
    {
        _options = options;
        Name = name;
        var parts = path.Split('+');
        Path = parts[0];
        Adapters = parts.Skip(1).Select(ParseAdapter).ToList();
        KeepAlive = options.KeepAlive;
        Created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    }

    public string Name { get; }
    public string Path { get; }
    /// <summary>LoRA adapters applied to this model at run time (beside the server's --lora ones): (file or PEFT folder, scale).</summary>
    public IReadOnlyList<(string Path, float Scale)> Adapters { get; }

    private static (string, float) ParseAdapter(string spec)
    {
        int colon = spec.LastIndexOf(':');
        if (colon > 0 && float.TryParse(spec[(colon + 1)..], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out float scale))
            return (spec[..colon], scale);
        return (spec, 1f);
    }
    /// <summary>How long the model stays loaded after its last request (null: for ever).</summary>
    public TimeSpan? KeepAlive { get; set; }
    public DateTime LastUsed => new(Interlocked.Read(ref _lastUsed), DateTimeKind.Utc);
    public int ActiveRequests => Volatile.Read(ref _active);
    /// <summary>Loaded once and unloaded since (idle), as opposed to loading or failed.</summary>
    public bool Unloaded { get; private set; }
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
        var full = System.IO.Path.GetFullPath(path).TrimEnd(System.IO.Path.DirectorySeparatorChar);
        var name = Directory.Exists(full) ? System.IO.Path.GetFileName(full) : System.IO.Path.GetFileNameWithoutExtension(full);
        return string.IsNullOrEmpty(name) ? "duet" : name;
    }

    public void StartLoading()
    {
        lock (_gate)
        {
            if (_started) return;
            _started = true;
            _error = null;
            Loading = Task.Run(Load);
        }
    }

    /// <summary>Loads the model if it is not (waiting for a load under way); a model that failed to load is a 503 with the reason.</summary>
    public async Task EnsureLoadedAsync(CancellationToken cancel)
    {
        if (_engine is not null) return;
        StartLoading();
        await Loading.WaitAsync(cancel).ConfigureAwait(false);
        if (_engine is null) throw new ApiException(503, $"the model {Name} failed to load: {_error}", "model", "model_failed");
    }

    /// <summary>Counts a request as using the model (it is not unloaded under it) until the lease is disposed.</summary>
    public IDisposable Acquire()
    {
        Interlocked.Increment(ref _active);
        Interlocked.Exchange(ref _lastUsed, DateTime.UtcNow.Ticks);
        return new Lease(this);
    }

    private sealed class Lease(ModelHost host) : IDisposable
    {
        private int _done;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) != 0) return;
            Interlocked.Exchange(ref host._lastUsed, DateTime.UtcNow.Ticks);
            Interlocked.Decrement(ref host._active);
        }
    }

    /// <summary>Unloads the model if it is loaded and no request uses it; true if it did.</summary>
    public bool TryUnload()
    {
        lock (_gate)
        {
            if (_engine is null || Volatile.Read(ref _active) > 0 || !Loading.IsCompleted) return false;
            var engine = _engine;
            _engine = null;
            engine.Dispose();
            _model?.Dispose();
            _model = null;
            _draft?.Dispose();
            _draft = null;
            Prompts = null;
            Constraints = null;
            _started = false;
            Unloaded = true;
        }
        // The weights were unmapped above; the caches were managed arrays, collected now (an unload is rare).
        GC.Collect();
        return true;
    }

    private void Load()
    {
        try
        {
            var (model, tokenizer) = ModelLoader.Load(Path);
            _model = model;
            model.QuantizedMath = _options.QuantizedMath;
            model.KeyCacheType = _options.KeyCacheType;
            model.ValueCacheType = _options.ValueCacheType;
            foreach (var (path, scale) in _options.Adapters.Concat(Adapters)) model.AddAdapter(Duet.Model.LoraAdapter.Read(path, model.Config), scale);
            int ctx = _options.Context ?? Math.Min(model.Config.ContextLength, 4096);
            if (ctx > model.Config.ContextLength)
                throw new ArgumentException($"--ctx {ctx} is longer than the model's context {model.Config.ContextLength}");
            Prompts = new PromptFormatter(tokenizer);
            Speculation? speculation = null;
            if (_options.DraftPath is { } draftPath && Path == _options.ModelPath)
            {
                var draft = _draft = Speculation.LoadDraft(draftPath, tokenizer);
                draft.KeyCacheType = _options.KeyCacheType;
                draft.ValueCacheType = _options.ValueCacheType;
                speculation = new Speculation { Draft = draft, MaxTokens = _options.DraftMax, MinProbability = _options.DraftPMin };
            }
            else if (_options.Lookup) speculation = new Speculation { MaxTokens = _options.DraftMax };
            var engine = new InferenceEngine(model, tokenizer, new EngineOptions { Slots = _options.Parallel, Context = ctx, MaxQueue = _options.MaxQueue, Speculation = speculation });
            Constraints = schema => Duet.Inference.Constrained.JsonConstraints.Create(engine, schema);
            _engine = engine;
            Unloaded = false;
        }
        catch (Exception e)
        {
            // Whatever stops the load, /health says so (503 "error" with the message) instead of "loading" forever.
            _error = e.Message;
            _model?.Dispose();
            _model = null;
            _draft?.Dispose();
            _draft = null;
        }
    }

    public void Dispose()
    {
        _engine?.Dispose();
        _model?.Dispose();
    }
}
