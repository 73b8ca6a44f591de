// Continuous batching: one loop thread owns the model and runs it in steps. A step is one batched forward
// pass (LlamaModel.ForwardRows) over a row for every sequence that is generating plus, in the rows left,
// chunks of the prompts of sequences that are starting; then each generating sequence samples its next
// token from its row's logits. Requests join and leave between steps, so a new request does not wait for
// the others to finish, and a cancelled one (a client that hung up) gives its slot back at the next step.
//
// Slots keep their KV cache after a request ends: a new request goes to the free slot whose cached tokens
// share the longest prefix with its prompt, and only the rest of the prompt is computed (prefix reuse:
// a chat's next turn, a shared system prompt).
//
// With BatchInvariant (the default) every row is computed with the single-token kernels, so a sequence's
// logits, and therefore its greedy tokens, are the same bits whatever else shares its batches.
//
// Speculative decoding (EngineOptions.Speculation): a generating sequence may feed, after its pending token, up
// to N drafted tokens in the same step (from a small draft model, or from an earlier occurrence of its last
// n-gram: prompt lookup). Its rows are computed with the invariant kernels, so row i's logits are the bits a
// plain step would give at that position; the sampler then runs over the rows in order, exactly as it would
// one step at a time, and the sequence keeps drafted tokens for as long as the sampled token equals the draft.
// The first difference ends the step (its sampled token is kept, the rest of the rows are dropped from the
// cache). So the output is token for token the output without speculation, greedy or sampled with a seed (the
// sampler draws as many random numbers, in the same order), and it follows the target model's distribution;
// drafts only decide how many tokens one pass over the weights yields.
using System.Collections.Concurrent;
using System.Diagnostics;
using Duet.Model;
using Duet.Tokenizers;

namespace Duet.Inference.Serving;

public sealed record EngineOptions
{
    /// <summary>Sequences decoded together (llama.cpp's --parallel).</summary>
    public int Slots { get; init; } = 4;
    /// <summary>Context length of each slot: prompt plus generated tokens.</summary>
    public int Context { get; init; } = 2048;
    /// <summary>Requests waiting for a slot before Submit refuses more.</summary>
    public int MaxQueue { get; init; } = 256;
    public bool BatchInvariant { get; init; } = true;
    /// <summary>Speculative decoding, or null for none. Steps with generating sequences then run the invariant kernels.</summary>
    public Speculation? Speculation { get; init; }
}

/// <summary>Where draft tokens come from and how many (llama.cpp's --model-draft, --draft-max, --draft-p-min, lookup decoding).</summary>
public sealed record Speculation
{
    /// <summary>A draft model with the target's vocabulary, run greedily; null: prompt lookup (n-gram drafting, no model).</summary>
    public LlamaModel? Draft { get; init; }
    /// <summary>Tokens drafted per step at most.</summary>
    public int MaxTokens { get; init; } = 16;
    /// <summary>The draft model stops drafting where its most likely token has less probability than this.</summary>
    public float MinProbability { get; init; } = 0.75f;
    /// <summary>Prompt lookup: the longest and shortest n-gram matched against the sequence so far.</summary>
    public int NgramMax { get; init; } = 3;
    public int NgramMin { get; init; } = 1;

    /// <summary>
    /// Loads a draft model (a .gguf file or an HF folder) for a model that uses <paramref name="tokenizer"/>, refusing one
    /// whose tokenizer differs in size or in any token; the caller owns (disposes) it.
    /// </summary>
    public static LlamaModel LoadDraft(string path, Tokenizer tokenizer)
    {
        var (draft, draftTokenizer) = ModelLoader.Load(path);
        string? why = draftTokenizer.VocabSize != tokenizer.VocabSize
            ? $"{draftTokenizer.VocabSize} tokens where the model has {tokenizer.VocabSize}"
            : Enumerable.Range(0, tokenizer.VocabSize).FirstOrDefault(i => draftTokenizer.IdToToken(i) != tokenizer.IdToToken(i), -1) is int i and >= 0
                ? $"token {i} is '{draftTokenizer.IdToToken(i)}' there, '{tokenizer.IdToToken(i)}' here" : null;
        if (why is null) return draft;
        draft.Dispose();
        throw new ArgumentException($"--draft {path}: not the model's tokenizer: {why}");
    }
}

public sealed class EngineMetrics
{
    internal long RequestsStarted, RequestsFinished, RequestsCancelled, PromptTokens, CachedPromptTokens, CompletionTokens, Steps, Drafted, DraftAccepted;
    internal long BusyTicks;
    internal int BusySlots, QueueDepth;

    public long RequestsStartedTotal => Interlocked.Read(ref RequestsStarted);
    public long RequestsFinishedTotal => Interlocked.Read(ref RequestsFinished);
    public long RequestsCancelledTotal => Interlocked.Read(ref RequestsCancelled);
    /// <summary>Prompt tokens of admitted requests, cached ones included.</summary>
    public long PromptTokensTotal => Interlocked.Read(ref PromptTokens);
    public long CachedPromptTokensTotal => Interlocked.Read(ref CachedPromptTokens);
    public long CompletionTokensTotal => Interlocked.Read(ref CompletionTokens);
    public long StepsTotal => Interlocked.Read(ref Steps);
    /// <summary>Speculative decoding: tokens drafted, and how many of them the target model's samples confirmed.</summary>
    public long DraftedTokensTotal => Interlocked.Read(ref Drafted);
    public long AcceptedDraftTokensTotal => Interlocked.Read(ref DraftAccepted);
    public double DraftAcceptanceRate => DraftedTokensTotal > 0 ? AcceptedDraftTokensTotal / (double)DraftedTokensTotal : 0;
    public int BusySlotCount => Volatile.Read(ref BusySlots);
    public int QueueDepthNow => Volatile.Read(ref QueueDepth);
    /// <summary>Seconds during which at least one sequence was being computed.</summary>
    public double BusySeconds => Interlocked.Read(ref BusyTicks) / (double)Stopwatch.Frequency;
    /// <summary>Generated tokens per busy second, since the start.</summary>
    public double TokensPerSecond => BusySeconds > 0 ? CompletionTokensTotal / BusySeconds : 0;
}

public sealed class InferenceEngine : IDisposable
{
    private sealed class Pending(GenerationRequest request, GenerationStream stream, CancellationToken cancel)
    {
        public readonly GenerationRequest Request = request;
        public readonly GenerationStream Stream = stream;
        public readonly CancellationToken Cancel = cancel;
        public CancellationTokenRegistration Registration;
    }

    private sealed class EmbedJob(int[] ids, CancellationToken cancel)
    {
        public readonly int[] Ids = ids;
        public readonly CancellationToken Cancel = cancel;
        public readonly TaskCompletionSource<float[]> Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private enum Phase { Free, Prefill, Decode }

    private sealed class Slot(int index, LlamaState state, int vocab)
    {
        public readonly int Index = index;
        public readonly LlamaState State = state;
        public readonly List<int> Cached = [];       // the tokens whose keys and values are in State (Cached.Count == State.Length)
        public readonly float[] Logits = new float[vocab];
        public Phase Phase;
        public Pending? Job;
        public int PromptPos, Pending, Generated, CachedAtAdmission;
        public long LastUsed;
        public Sampler? Sampler;
        public StreamingDecoder? Decoder;
        public StopStrings? Stops;
        public readonly List<int> History = [];      // what the penalties count: generated tokens (after the prompt's, with PenalizePrompt)
        public int[] Drafts = [];                    // this step's drafted tokens (speculative decoding)
        public int DraftCount, FirstLogit;           // how many, and the logits row of the pending token
        public LlamaState? DraftState;               // the draft model's cache for this sequence
        public readonly List<int> DraftCached = [];  // the tokens in DraftState
    }

    private readonly LlamaModel _model;
    private readonly Tokenizer _tokenizer;
    private readonly Slot[] _slots;
    private readonly Slot[] _byAge;   // the same slots, sorted by admission before each step
    private readonly LlamaState _scratch;
    private readonly ConcurrentQueue<Pending> _queue = new();
    private readonly ConcurrentQueue<EmbedJob> _embeds = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Thread _loop;
    private readonly CancellationTokenSource _stop = new();
    private readonly HashSet<int> _stopTokens;
    private long _clock;
    private LlamaState? _embedState;

    public EngineOptions Options { get; }
    public EngineMetrics Metrics { get; } = new();
    public LlamaModel Model => _model;
    public Tokenizer Tokenizer => _tokenizer;
    public IReadOnlySet<int> StopTokens => _stopTokens;
    public int Context => Options.Context;

    public InferenceEngine(LlamaModel model, Tokenizer tokenizer, EngineOptions? options = null)
    {
        Options = options ?? new EngineOptions();
        if (Options.Slots < 1 || Options.Slots > LlamaState.MaxBatch) throw new ArgumentException($"slots must be 1..{LlamaState.MaxBatch}, got {Options.Slots}");
        if (Options.Context < 2) throw new ArgumentException($"the context must hold at least 2 tokens, got {Options.Context}");
        if (Options.Context > model.Config.ContextLength)
            throw new ArgumentException($"the context {Options.Context} is longer than the model's {model.Config.ContextLength}");
        if (tokenizer.VocabSize > model.Config.Vocab)
            throw new ArgumentException($"the tokenizer has {tokenizer.VocabSize} tokens, the model only {model.Config.Vocab}");
        _model = model;
        _tokenizer = tokenizer;
        _stopTokens = Duet.Inference.StopTokens.Of(tokenizer);
        _slots = Enumerable.Range(0, Options.Slots).Select(i => new Slot(i, model.CreateState(Options.Context), model.Config.Vocab)).ToArray();
        if (Options.Speculation is { } spec)
        {
            if (spec.MaxTokens < 1 || spec.MaxTokens >= LlamaState.MaxBatch) throw new ArgumentException($"draft tokens per step must be 1..{LlamaState.MaxBatch - 1}, got {spec.MaxTokens}");
            if (spec.NgramMin < 1 || spec.NgramMax < spec.NgramMin) throw new ArgumentException($"prompt lookup n-grams must be 1 <= min <= max, got {spec.NgramMin}..{spec.NgramMax}");
            if (spec.Draft is { } d)
            {
                if (d.Config.Vocab != model.Config.Vocab)
                    throw new ArgumentException($"the draft model's vocabulary has {d.Config.Vocab} tokens, the target's {model.Config.Vocab}: they must share one tokenizer");
                if (d.Config.ContextLength < Options.Context)
                    throw new ArgumentException($"the draft model's context ({d.Config.ContextLength}) is shorter than the engine's ({Options.Context})");
            }
            foreach (var slot in _slots)
            {
                slot.Drafts = new int[spec.MaxTokens];
                if (spec.Draft is { } dm) slot.DraftState = dm.CreateState(Options.Context);
            }
        }
        _byAge = (Slot[])_slots.Clone();
        _scratch = model.CreateState(1);
        _loop = new Thread(Loop) { IsBackground = true, Name = "duet-engine" };
        _loop.Start();
    }

    /// <summary>Queues a request; tokens arrive on the returned stream. Cancelling <paramref name="cancel"/> ends it and frees its slot.</summary>
    public GenerationStream Submit(GenerationRequest request, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Prompt.Length == 0) throw new ArgumentException("the prompt has no tokens");
        if (request.Prompt.Length >= Context)
            throw new ArgumentException($"the prompt has {request.Prompt.Length} tokens; the context holds {Context}, so at most {Context - 1} leave room for a reply");
        if (request.MaxTokens < 1) throw new ArgumentException($"max tokens must be at least 1, got {request.MaxTokens}");
        foreach (int t in request.Prompt)
            if ((uint)t >= (uint)_model.Config.Vocab) throw new ArgumentException($"token {t} is outside the vocabulary (0..{_model.Config.Vocab - 1})");
        if (request.TopLogprobs is < 0 or > 20) throw new ArgumentException("top logprobs must be 0..20");
        request.Sampling.Validate();
        ObjectDisposedException.ThrowIf(_stop.IsCancellationRequested, this);
        if (Volatile.Read(ref Metrics.QueueDepth) >= Options.MaxQueue)
            throw new EngineBusyException($"{Options.MaxQueue} requests are already waiting; try again later");
        var stream = new GenerationStream();
        var p = new Pending(request, stream, cancel);
        Interlocked.Increment(ref Metrics.QueueDepth);
        _queue.Enqueue(p);
        p.Registration = cancel.Register(static s => ((SemaphoreSlim)s!).Release(), _wake);
        _wake.Release();
        return stream;
    }

    /// <summary>Mean of the final normed hidden states over the tokens, L2-normalized: a sentence embedding.</summary>
    public Task<float[]> EmbedAsync(int[] ids, CancellationToken cancel = default)
    {
        if (ids.Length == 0) throw new ArgumentException("the input has no tokens");
        if (ids.Length > Context) throw new ArgumentException($"the input has {ids.Length} tokens; at most {Context} fit");
        foreach (int t in ids)
            if ((uint)t >= (uint)_model.Config.Vocab) throw new ArgumentException($"token {t} is outside the vocabulary (0..{_model.Config.Vocab - 1})");
        var job = new EmbedJob(ids, cancel);
        _embeds.Enqueue(job);
        _wake.Release();
        return job.Done.Task;
    }

    private void Loop()
    {
        var rowStates = new LlamaState[LlamaState.MaxBatch];
        var rowSlots = new Slot[LlamaState.MaxBatch];
        var rowTokens = new int[LlamaState.MaxBatch];
        var logitRows = new int[LlamaState.MaxBatch];
        var logitSlots = new Slot[LlamaState.MaxBatch];
        var logits = new float[LlamaState.MaxBatch * _model.Config.Vocab];
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                RunEmbeddings();
                DropCancelled();
                Admit();
                if (!AnyBusy())
                {
                    _wake.Wait(_stop.Token);
                    continue;
                }
                long t0 = Stopwatch.GetTimestamp();
                int rows = 0, nLogits = 0, decoding = 0;
                foreach (var s in _slots) if (s.Phase == Phase.Decode) decoding++;
                int spare = LlamaState.MaxBatch - decoding; // rows for drafts, after one row per generating sequence
                foreach (var s in _slots)
                {
                    if (s.Phase != Phase.Decode) continue;
                    s.DraftCount = Options.Speculation is { } spec && spare > 0 ? Draft(s, spec, spare) : 0;
                    spare -= s.DraftCount;
                    s.FirstLogit = nLogits;
                    for (int i = 0; i <= s.DraftCount; i++)
                    {
                        rowStates[rows] = s.State; rowSlots[rows] = s; rowTokens[rows] = i == 0 ? s.Pending : s.Drafts[i - 1];
                        logitRows[nLogits] = rows; logitSlots[nLogits++] = s;
                        rows++;
                    }
                }
                // Prompts in the rows left, oldest request first (slots sorted in place: no allocation per step).
                Array.Sort(_byAge, static (a, b) => a.LastUsed.CompareTo(b.LastUsed));
                foreach (var s in _byAge)
                {
                    if (s.Phase != Phase.Prefill) continue;
                    int room = LlamaState.MaxBatch - rows;
                    if (room == 0) break;
                    var prompt = s.Job!.Request.Prompt;
                    int n = Math.Min(room, prompt.Length - s.PromptPos);
                    for (int i = 0; i < n; i++) { rowStates[rows] = s.State; rowSlots[rows] = s; rowTokens[rows] = prompt[s.PromptPos + i]; rows++; }
                    s.PromptPos += n;
                    if (s.PromptPos == prompt.Length) { logitRows[nLogits] = rows - 1; logitSlots[nLogits++] = s; }
                }
                // Speculation needs every generating row computed as it would be alone (see the top of the file).
                bool invariant = Options.BatchInvariant || (Options.Speculation is not null && decoding > 0);
                _model.ForwardRows(_scratch, rowStates.AsSpan(0, rows), rowTokens.AsSpan(0, rows), logitRows.AsSpan(0, nLogits),
                    logits.AsSpan(0, nLogits * _model.Config.Vocab), invariant: invariant);
                for (int i = 0; i < rows; i++) rowSlots[i].Cached.Add(rowTokens[i]);
                Array.Clear(rowStates);
                Array.Clear(rowSlots);
                Interlocked.Increment(ref Metrics.Steps);
                int vocab = _model.Config.Vocab;
                for (int i = 0; i < nLogits; i++)
                {
                    var slot = logitSlots[i];
                    if (slot.Phase == Phase.Decode && slot.DraftCount > 0 && i == slot.FirstLogit)
                    {
                        i += slot.DraftCount; // the slot's drafted rows are taken here
                        try { Verify(slot, logits.AsSpan(slot.FirstLogit * vocab, (slot.DraftCount + 1) * vocab)); }
                        catch (Exception e) when (slot.Job is not null)
                        {
                            slot.Job.Stream.Fail(e);
                            Release(slot, cancelled: false);
                            ResetCache(slot);
                        }
                        continue;
                    }
                    // A prompt just read: the draft model reads it too, before the first token (as llama.cpp's
                    // speculative example does), so the prompt's cost is counted with the prompt.
                    try
                    {
                        if (slot.Phase == Phase.Prefill && Options.Speculation?.Draft is { } draftModel)
                            SyncDraft(slot, draftModel, slot.Cached.Count, needLogits: false);
                        Sample(slot, logits.AsSpan(i * vocab, vocab));
                    }
                    catch (Exception e) when (slot.Job is not null)
                    {
                        // A failure in one request's sampling (its constraint, its sampler) ends that request only.
                        slot.Job.Stream.Fail(e);
                        Release(slot, cancelled: false);
                        ResetCache(slot);
                    }
                }
                Interlocked.Add(ref Metrics.BusyTicks, Stopwatch.GetTimestamp() - t0);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                // A bug must not leave clients waiting forever: fail every running request and clear the slots.
                foreach (var s in _slots.Where(s => s.Job is not null)) { s.Job!.Stream.Fail(e); Release(s, cancelled: false); ResetCache(s); }
            }
        }
        foreach (var s in _slots.Where(s => s.Job is not null)) Finish(s, FinishReason.Cancelled);
        while (_queue.TryDequeue(out var p)) p.Stream.Complete(new GenerationResult(FinishReason.Cancelled, p.Request.Prompt.Length, 0, 0, ""));
    }

    /// <summary>
    /// The rows of a sequence that fed its pending token and <see cref="Slot.DraftCount"/> drafts: samples row after
    /// row while the sampled token is the next draft, then cuts the cache back to the rows kept.
    /// </summary>
    private void Verify(Slot s, ReadOnlySpan<float> rowLogits)
    {
        int vocab = _model.Config.Vocab, k = s.DraftCount;
        // ForwardRows cached all k + 1 rows; keep the pending token's, then one more per confirmed draft.
        int kept = s.State.Length - k;
        s.State.Length = kept;
        s.Cached.RemoveRange(kept, k);
        Interlocked.Add(ref Metrics.Drafted, k);
        for (int i = 0; ; i++)
        {
            Sample(s, rowLogits.Slice(i * vocab, vocab));
            if (s.Phase != Phase.Decode || i == k || s.Pending != s.Drafts[i]) return;
            // The sampled token is the draft row i + 1 fed: that row's keys and values and logits stand.
            s.State.Length++;
            s.Cached.Add(s.Drafts[i]);
            Interlocked.Increment(ref Metrics.DraftAccepted);
        }
    }

    /// <summary>Fills <see cref="Slot.Drafts"/> for a generating sequence; returns how many (at most <paramref name="room"/>).</summary>
    private static int Draft(Slot s, Speculation spec, int room)
    {
        var req = s.Job!.Request;
        // Rows past the context or past the reply's last token would be computed for nothing.
        int max = Math.Min(Math.Min(spec.MaxTokens, room), Math.Min(s.State.Capacity - s.State.Length - 1, req.MaxTokens - s.Generated - 1));
        if (max <= 0) return 0;
        return spec.Draft is { } model ? DraftWithModel(s, model, spec.MinProbability, max) : DraftByLookup(s, spec, max);
    }

    /// <summary>
    /// Prompt lookup: the last n tokens of the sequence (n from NgramMax down to NgramMin) found earlier in it, most
    /// recent occurrence first; the tokens that followed there are the drafts, read on into the drafts themselves where
    /// they reach the end of the sequence (a repeating stretch drafts as far as it would repeat, as llama.cpp's lookup
    /// does by looking up again after each drafted token).
    /// </summary>
    private static int DraftByLookup(Slot s, Speculation spec, int max)
    {
        var seq = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(s.Cached);
        int len = seq.Length + 1; // the cached tokens, then the pending one
        int At(ReadOnlySpan<int> cached, int i) => i < cached.Length ? cached[i] : s.Pending;
        for (int n = Math.Min(spec.NgramMax, len - 1); n >= spec.NgramMin; n--)
        {
            for (int j = len - n - 1; j >= 0; j--)
            {
                int m = 0;
                while (m < n && At(seq, j + m) == At(seq, len - n + m)) m++;
                if (m < n) continue;
                for (int i = 0; i < max; i++)
                {
                    int from = j + n + i; // below len + i: the sequence, or a draft already written
                    s.Drafts[i] = from < len ? At(seq, from) : s.Drafts[from - len];
                }
                return max;
            }
        }
        return 0;
    }

    /// <summary>
    /// The draft model: brought up to the sequence (its cache cut back to what the two share, the rest fed), then
    /// greedy while its most likely token has at least <paramref name="minProbability"/>.
    /// </summary>
    private static int DraftWithModel(Slot s, LlamaModel draft, float minProbability, int max)
    {
        var ds = s.DraftState!;
        var cached = s.DraftCached;
        SyncDraft(s, draft, s.Cached.Count + 1, needLogits: true);
        int count = 0;
        while (true)
        {
            int t = Sampler.Argmax(ds.Logits);
            if (TopProbability(ds.Logits, t) < minProbability) break;
            s.Drafts[count++] = t;
            if (count == max || ds.Length >= ds.Capacity) break;
            draft.Forward(ds, t);
            cached.Add(t);
        }
        return count;
    }

    /// <summary>
    /// Brings the draft model's cache to the first <paramref name="len"/> tokens of the sequence (the cached tokens, then
    /// the pending one): cut back to what the two share, the rest fed; with <paramref name="needLogits"/> the last token
    /// is fed again if it was already there, for its logits.
    /// </summary>
    private static void SyncDraft(Slot s, LlamaModel draft, int len, bool needLogits)
    {
        var ds = s.DraftState!;
        var cached = s.DraftCached;
        int Token(int i) => i < s.Cached.Count ? s.Cached[i] : s.Pending;
        int common = 0, shared = Math.Min(cached.Count, len);
        while (common < shared && cached[common] == Token(common)) common++;
        if (needLogits) common = Math.Min(common, len - 1);
        cached.RemoveRange(common, cached.Count - common);
        ds.Length = common;
        int feed = len - common;
        if (feed <= 0) return;
        // After a step, one or two tokens are new (the last confirmed draft, the token sampled after it): single-token
        // steps are cheaper than the prompt kernels' packing for so few.
        if (feed <= 4)
            for (int i = common; i < len; i++) draft.Forward(ds, Token(i));
        else
        {
            var tokens = new int[feed];
            for (int i = 0; i < feed; i++) tokens[i] = Token(common + i);
            draft.Prefill(ds, tokens);
        }
        for (int i = common; i < len; i++) cached.Add(Token(i));
    }

    private static float TopProbability(ReadOnlySpan<float> logits, int top)
    {
        float m = logits[top];
        double sum = 0;
        foreach (float v in logits) sum += Math.Exp(v - m);
        return (float)(1 / sum);
    }

    private bool AnyBusy()
    {
        foreach (var s in _slots) if (s.Phase != Phase.Free) return true;
        return false;
    }

    private void RunEmbeddings()
    {
        while (_embeds.TryDequeue(out var job))
        {
            if (job.Cancel.IsCancellationRequested) { job.Done.TrySetCanceled(job.Cancel); continue; }
            try { job.Done.TrySetResult(Embed(job.Ids)); }
            catch (Exception e) { job.Done.TrySetException(e); }
        }
    }

    private float[] Embed(int[] ids)
    {
        var c = _model.Config;
        var st = _embedState ??= _model.CreateState(Context);
        st.Reset();
        var rows = new LlamaState[LlamaState.MaxBatch];
        Array.Fill(rows, st);
        var hidden = new float[LlamaState.MaxBatch * c.Dim];
        var sum = new double[c.Dim];
        for (int i = 0; i < ids.Length; i += LlamaState.MaxBatch)
        {
            int n = Math.Min(LlamaState.MaxBatch, ids.Length - i);
            _model.ForwardRows(st, rows.AsSpan(0, n), ids.AsSpan(i, n), [], [], hidden, invariant: Options.BatchInvariant);
            for (int b = 0; b < n; b++)
                for (int d = 0; d < c.Dim; d++) sum[d] += hidden[b * c.Dim + d];
        }
        double norm = Math.Sqrt(sum.Sum(v => v * v));
        var e = new float[c.Dim];
        for (int d = 0; d < c.Dim; d++) e[d] = norm > 0 ? (float)(sum[d] / norm) : 0f;
        return e;
    }

    private void DropCancelled()
    {
        foreach (var s in _slots)
            if (s.Job is { } j && j.Cancel.IsCancellationRequested) Finish(s, FinishReason.Cancelled);
    }

    private void Admit()
    {
        while (_slots.Any(s => s.Phase == Phase.Free) && _queue.TryPeek(out _))
        {
            if (!_queue.TryDequeue(out var p)) break;
            Interlocked.Decrement(ref Metrics.QueueDepth);
            if (p.Cancel.IsCancellationRequested)
            {
                p.Registration.Dispose();
                Interlocked.Increment(ref Metrics.RequestsCancelled);
                p.Stream.Complete(new GenerationResult(FinishReason.Cancelled, p.Request.Prompt.Length, 0, 0, ""));
                continue;
            }
            var prompt = p.Request.Prompt;
            // The free slot whose cache shares the longest prefix with the prompt; ties go to the least recently used.
            Slot best = null!;
            int bestCommon = -1;
            foreach (var s in _slots.Where(s => s.Phase == Phase.Free).OrderBy(s => s.LastUsed))
            {
                int common = CommonPrefix(s.Cached, prompt);
                if (common > bestCommon) { best = s; bestCommon = common; }
            }
            // At least the last prompt token is computed again: its logits pick the first reply token.
            int keep = Math.Min(bestCommon, prompt.Length - 1);
            best.Cached.RemoveRange(keep, best.Cached.Count - keep);
            best.State.Length = keep;
            best.Job = p;
            best.Phase = Phase.Prefill;
            best.PromptPos = keep;
            best.CachedAtAdmission = keep;
            best.Generated = 0;
            best.LastUsed = ++_clock;
            best.History.Clear();
            if (p.Request.PenalizePrompt) best.History.AddRange(prompt);
            best.Sampler = new Sampler(_model.Config.Vocab, p.Request.PenalizePrompt ? p.Request.Sampling
                : p.Request.Sampling with { RepeatLastN = Math.Max(p.Request.Sampling.RepeatLastN, p.Request.MaxTokens) });
            best.Decoder = _tokenizer.CreateStreamingDecoder(skipSpecialTokens: true);
            best.Decoder.Prime(prompt);
            best.Stops = new StopStrings(p.Request.Stop);
            p.Request.Constraint?.Reset();
            Interlocked.Increment(ref Metrics.BusySlots);
            Interlocked.Increment(ref Metrics.RequestsStarted);
            Interlocked.Add(ref Metrics.PromptTokens, prompt.Length);
            Interlocked.Add(ref Metrics.CachedPromptTokens, keep);
        }
    }

    private static int CommonPrefix(List<int> cached, int[] prompt)
    {
        int n = Math.Min(cached.Count, prompt.Length), i = 0;
        while (i < n && cached[i] == prompt[i]) i++;
        return i;
    }

    private void Sample(Slot s, ReadOnlySpan<float> rowLogits)
    {
        var job = s.Job!;
        var req = job.Request;
        var lg = s.Logits.AsSpan();
        rowLogits.CopyTo(lg);
        if (req.LogitBias is { } bias)
            foreach (var (t, b) in bias)
                if ((uint)t < (uint)lg.Length) lg[t] += b;
        if (req.IgnoreEos)
            foreach (int t in _stopTokens) lg[t] = float.NegativeInfinity;
        req.Constraint?.Apply(lg, req.MaxTokens - s.Generated);
        int token = s.Sampler!.Sample(lg, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(s.History));
        float logprob = 0;
        TokenLogprob[]? top = null;
        if (req.TopLogprobs is int k) (logprob, top) = Logprobs.Of(lg, token, k);
        req.Constraint?.Accept(token);
        if (_stopTokens.Contains(token) && !req.IgnoreEos)
        {
            Finish(s, FinishReason.Stop);
            return;
        }
        s.History.Add(token);
        s.Generated++;
        Interlocked.Increment(ref Metrics.CompletionTokens);
        string text = s.Stops!.Push(s.Decoder!.Push(token));
        job.Stream.Write(new GeneratedToken(token, text, logprob, top));
        if (s.Stops.Stopped || req.Constraint is { IsComplete: true, ContinuesAfterComplete: false }) { Finish(s, FinishReason.Stop); return; }
        if (s.Generated >= req.MaxTokens || s.State.Length >= s.State.Capacity)
        {
            // A constraint that may go on after completion (parallel tool calls) and is complete ended at a valid point.
            Finish(s, req.Constraint is { IsComplete: true } ? FinishReason.Stop : FinishReason.Length);
            return;
        }
        s.Pending = token;
        s.Phase = Phase.Decode;
    }

    private void Finish(Slot s, FinishReason reason)
    {
        var job = s.Job!;
        string rest = "";
        if (reason != FinishReason.Cancelled && !s.Stops!.Stopped)
            rest = s.Stops.Push(s.Decoder!.Flush()) + s.Stops.Flush();
        var result = new GenerationResult(reason, job.Request.Prompt.Length, s.Generated, s.CachedAtAdmission, rest);
        Release(s, reason == FinishReason.Cancelled);
        job.Stream.Complete(result);
    }

    private void Release(Slot s, bool cancelled)
    {
        var job = s.Job!;
        job.Registration.Dispose();
        s.Job = null;
        s.Phase = Phase.Free;
        s.Sampler = null;
        s.Decoder = null;
        Interlocked.Decrement(ref Metrics.BusySlots);
        Interlocked.Increment(ref cancelled ? ref Metrics.RequestsCancelled : ref Metrics.RequestsFinished);
        // A prompt that was cut short leaves its cache consistent: Cached always matches State.Length.
        if (s.Cached.Count != s.State.Length) ResetCache(s);
    }

    private static void ResetCache(Slot s)
    {
        s.Cached.Clear();
        s.State.Length = 0;
    }

    public void Dispose()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        _wake.Release();
        _loop.Join();
        _stop.Dispose();
    }
}

internal static class Logprobs
{
    /// <summary>log p(token) under softmax(logits), and the k most likely tokens with theirs (most likely first).</summary>
    public static (float, TokenLogprob[]) Of(ReadOnlySpan<float> logits, int token, int k)
    {
        float max = float.NegativeInfinity;
        foreach (float v in logits) if (v > max) max = v;
        double sum = 0;
        foreach (float v in logits) if (v > float.NegativeInfinity) sum += Math.Exp(v - max);
        double lse = max + Math.Log(sum);
        var top = new TokenLogprob[Math.Min(k, logits.Length)];
        int filled = 0;
        for (int i = 0; i < logits.Length && top.Length > 0; i++)
        {
            float v = logits[i];
            if (filled == top.Length && v <= top[filled - 1].Logprob) continue;
            int j = filled < top.Length ? filled++ : filled - 1;
            while (j > 0 && top[j - 1].Logprob < v) { top[j] = top[j - 1]; j--; }
            top[j] = new TokenLogprob(i, v);
        }
        for (int i = 0; i < filled; i++) top[i] = new TokenLogprob(top[i].Token, (float)(top[i].Logprob - lse));
        return ((float)(logits[token] - lse), top[..filled]);
    }
}
