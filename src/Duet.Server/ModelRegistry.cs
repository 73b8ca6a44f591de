// The models a server serves (--model NAME=PATH, repeated, or --models DIR): a request's "model" chooses one (an
// unknown name is the API's 404), which loads on first use; a model idle longer than its keep-alive is unloaded by
// a sweep every second, and loading one more than MaxLoadedModels unloads the one idle the longest (all busy: 503).
namespace Duet.Server;

public sealed class ModelRegistry : IDisposable
{
    private readonly ServerOptions _options;
    private readonly Timer _sweeper;

    public IReadOnlyList<ModelHost> Hosts { get; }
    /// <summary>The first model: what requests without a "model" get, and what /health and /metrics report.</summary>
    public ModelHost Default => Hosts[0];

    public ModelRegistry(ServerOptions options, ModelHost first)
    {
        _options = options;
        var hosts = new List<ModelHost> { first };
        foreach (var (name, path) in options.ExtraModels)
        {
            if (hosts.Any(h => h.Name == name)) throw new ArgumentException($"two models are named {name}");
            hosts.Add(new ModelHost(options, name, path));
        }
        Hosts = hosts;
        _sweeper = new Timer(_ => Sweep(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    /// <summary>The model a request names ("name" or "name:latest"; none: the default), or a 404.</summary>
    public ModelHost Get(string? name)
    {
        if (string.IsNullOrEmpty(name)) return Default;
        foreach (var h in Hosts)
            if (h.Name == name || h.Name + ":latest" == name) return h;
        throw new ApiException(404, $"the model '{GenerationParameters.Clip(name)}' does not exist; this server has {string.Join(", ", Hosts.Select(h => h.Name))}", "model", "model_not_found");
    }

    /// <summary>The named model, loaded and leased to the caller until the returned lease is disposed.</summary>
    public async Task<(ModelHost Host, IDisposable Lease)> UseAsync(string? name, CancellationToken cancel)
    {
        var host = Get(name);
        var lease = host.Acquire();
        try
        {
            if (!host.Ready) MakeRoomFor(host);
            await host.EnsureLoadedAsync(cancel).ConfigureAwait(false);
            return (host, lease);
        }
        catch
        {
            lease.Dispose();
            throw;
        }
    }

    private readonly object _room = new();

    private void MakeRoomFor(ModelHost host)
    {
        lock (_room)
        {
            while (Hosts.Count(h => h != host && h.Ready) >= Math.Max(1, _options.MaxLoadedModels))
            {
                var idle = Hosts.Where(h => h != host && h.Ready && h.ActiveRequests == 0).OrderBy(h => h.LastUsed).FirstOrDefault();
                if (idle is null || !idle.TryUnload())
                    throw new ApiException(503, $"{_options.MaxLoadedModels} models are loaded and all are busy; try again shortly", "model", "server_busy");
            }
        }
    }

    /// <summary>Unloads the models idle longer than their keep-alive.</summary>
    public void Sweep()
    {
        var now = DateTime.UtcNow;
        foreach (var h in Hosts)
            if (h.Ready && h.KeepAlive is { } keep && h.ActiveRequests == 0 && now - h.LastUsed > keep)
            {
                try { if (h.TryUnload()) Console.Error.WriteLine($"unloaded {h.Name} (idle {now - h.LastUsed:g})"); }
                catch (Exception e) { Console.Error.WriteLine($"error: unloading {h.Name}: {e}"); }
            }
    }

    public void Dispose()
    {
        _sweeper.Dispose();
        foreach (var h in Hosts) h.Dispose();
    }
}
