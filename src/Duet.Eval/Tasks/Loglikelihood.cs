// Log-likelihood requests as lm-evaluation-harness builds and scores them (its HFLM loglikelihood):
//   _encode_pair: trailing white space of the context moves to the continuation; whole = encode(context + continuation),
//   context_enc = encode(context), continuation_enc = whole[len(context_enc):] (so the continuation's tokens are those
//   of the whole text, cut at the context's length); an empty context is the prefix token alone.
//   The model reads (context_enc + continuation_enc)[-(max_length + 1):][:-1]; the result is the sum of the
//   continuation tokens' log-probabilities and whether each was the greedy (arg-max) choice.
// Requests of one question that share their context tokens run it once: the context is prefilled in one state,
// its KV cache copied to one state per choice, and all choices' rows go through the model together (batched rows
// over the KV cache). Without sharing, every request runs its whole sequence, as the harness does.
using System.Numerics.Tensors;
using Duet.Model;
using Duet.Tokenizers;

namespace Duet.Eval.Tasks;

/// <summary>One request: the context's tokens and the continuation's.</summary>
public readonly record struct LoglikelihoodRequest(int[] Context, int[] Continuation);

/// <summary>What a request scored: the summed log-probability of its continuation, and whether it was greedy throughout.</summary>
public readonly record struct Loglikelihood(double Value, bool IsGreedy);

public sealed class LoglikelihoodScorer
{
    private readonly LlamaModel _model;
    private readonly Tokenizer _tokenizer;
    private readonly int _prefix;
    private readonly List<LlamaState> _states = [];
    private readonly float[] _logits;
    private readonly float[] _prefixLogits;
    private readonly float[] _scratch;
    private readonly int[] _rowTokens = new int[LlamaState.MaxBatch];
    private readonly LlamaState[] _rowStates = new LlamaState[LlamaState.MaxBatch];
    private readonly int[] _logitRows = new int[LlamaState.MaxBatch];
    private readonly (int Request, int Target)[] _rowTargets = new (int, int)[LlamaState.MaxBatch];

    /// <summary>Whether requests of a question that share a context run it once (default) or each run whole.</summary>
    public bool ShareContext { get; init; } = true;
    /// <summary>The longest sequence the model reads (the harness's max_length): the model's context length unless set lower.</summary>
    public int MaxLength { get; init; }
    /// <summary>Whether encodings start with BOS (where the vocabulary has one).</summary>
    public bool AddBos { get; }
    /// <summary>Tokens run through the model so far (contexts and continuations), for speed reports.</summary>
    public long TokensRun { get; private set; }

    /// <param name="addBos">BOS first in every encoding: null takes the tokenizer's own rule (llama.cpp's add_bos; the harness with add_bos_token=True); false is the harness's HF default.</param>
    public LoglikelihoodScorer(LlamaModel model, Tokenizer tokenizer, bool? addBos = null)
    {
        _model = model;
        _tokenizer = tokenizer;
        AddBos = addBos ?? Perplexity.BosOf(tokenizer) >= 0;
        if (AddBos && tokenizer.BosId < 0) throw new ArgumentException("the tokenizer has no BOS token to add");
        _prefix = tokenizer.BosId >= 0 ? tokenizer.BosId : tokenizer.EosId;
        MaxLength = model.Config.ContextLength;
        int v = model.Config.Vocab;
        _logits = new float[LlamaState.MaxBatch * v];
        _prefixLogits = new float[v];
        _scratch = new float[v];
    }

    /// <summary>The tokens of a text: BOS first if <see cref="AddBos"/>; special-token text is text, not control tokens.</summary>
    public int[] Encode(string text)
    {
        var ids = _tokenizer.Encode(text, addSpecialTokens: false, parseSpecial: false);
        if (!AddBos) return ids;
        var withBos = new int[ids.Length + 1];
        withBos[0] = _tokenizer.BosId;
        ids.CopyTo(withBos, 1);
        return withBos;
    }

    /// <summary>The harness's _encode_pair.</summary>
    public LoglikelihoodRequest EncodePair(string context, string continuation)
    {
        if (continuation.Length == 0) throw new ArgumentException("an empty continuation scores nothing");
        if (context.Length == 0)
        {
            if (_prefix < 0) throw new ArgumentException("an empty context needs a BOS or EOS token to start from");
            var cont = _tokenizer.Encode(continuation, addSpecialTokens: false, parseSpecial: false);
            return new LoglikelihoodRequest([_prefix], cont);
        }
        int spaces = context.Length - context.TrimEnd().Length;
        if (spaces > 0)
        {
            continuation = context[^spaces..] + continuation;
            context = context[..^spaces];
        }
        var whole = Encode(context + continuation);
        var ctx = Encode(context);
        return new LoglikelihoodRequest(ctx, whole[Math.Min(ctx.Length, whole.Length)..]);
    }

    /// <summary>Scores the requests of one question (the choices); those with equal contexts share its run when <see cref="ShareContext"/>.</summary>
    public Loglikelihood[] Score(IReadOnlyList<LoglikelihoodRequest> requests)
    {
        var results = new Loglikelihood[requests.Count];
        var sums = new double[requests.Count];
        var greedy = new bool[requests.Count];
        Array.Fill(greedy, true);
        int V = _model.Config.Vocab;
        foreach (var r in requests)
        {
            if (r.Continuation.Length == 0) throw new ArgumentException("a continuation without tokens");
            if (r.Continuation.Length > MaxLength) throw new ArgumentException($"a continuation of {r.Continuation.Length} tokens is longer than the model's {MaxLength}");
            foreach (int t in r.Context) if ((uint)t >= (uint)V) throw new ArgumentException($"token {t} is outside the model's vocabulary of {V}");
            foreach (int t in r.Continuation) if ((uint)t >= (uint)V) throw new ArgumentException($"token {t} is outside the model's vocabulary of {V}");
        }
        for (int start = 0; start < requests.Count;)
        {
            int end = start + 1;
            if (ShareContext)
                while (end < requests.Count && requests[end].Context.AsSpan().SequenceEqual(requests[start].Context)) end++;
            int longest = 0;
            for (int i = start; i < end; i++) longest = Math.Max(longest, requests[start].Context.Length + requests[i].Continuation.Length - 1);
            if (ShareContext && longest <= MaxLength) Shared(requests, start, end, sums, greedy);
            else
                for (int i = start; i < end; i++) Whole(requests, i, sums, greedy);
            start = end;
        }
        for (int i = 0; i < results.Length; i++) results[i] = new Loglikelihood(sums[i], greedy[i]);
        return results;
    }

    /// <summary>Requests start..end-1 share their context: run it once, then every continuation from a copy of its cache.</summary>
    private void Shared(IReadOnlyList<LoglikelihoodRequest> requests, int start, int end, double[] sums, bool[] greedy)
    {
        var ctx = requests[start].Context;
        int n = ctx.Length, k = end - start;
        int need = n;
        for (int i = start; i < end; i++) need = Math.Max(need, n + requests[i].Continuation.Length - 1);
        EnsureStates(k, need);
        var first = _states[0];
        first.Reset();
        // The context; only its last row's logits, which score every continuation's first token.
        var rows = new Rows(this);
        for (int j = 0; j < n; j++) rows.Add(first, ctx[j], j == n - 1 ? -1 : -2, -1, sums, greedy);
        rows.Flush(sums, greedy);
        for (int i = start; i < end; i++) Accumulate(_prefixLogits, requests[i].Continuation[0], i, sums, greedy);
        for (int c = 1; c < k; c++)
        {
            var s = _states[c];
            for (int l = 0; l < first.Keys.Length; l++)
            {
                s.Keys[l].CopyPrefixFrom(first.Keys[l], n);
                s.Values[l].CopyPrefixFrom(first.Values[l], n);
            }
            s.Length = n;
        }
        // Every continuation but its last token, each in its own state; row j's logits score token j + 1.
        for (int c = 0; c < k; c++)
        {
            var cont = requests[start + c].Continuation;
            for (int j = 0; j + 1 < cont.Length; j++) rows.Add(_states[c], cont[j], start + c, cont[j + 1], sums, greedy);
        }
        rows.Flush(sums, greedy);
    }

    /// <summary>One request run whole from an empty cache, left-truncated to MaxLength + 1 tokens as the harness does.</summary>
    private void Whole(IReadOnlyList<LoglikelihoodRequest> requests, int i, double[] sums, bool[] greedy)
    {
        var r = requests[i];
        var all = new int[r.Context.Length + r.Continuation.Length];
        r.Context.CopyTo(all, 0);
        r.Continuation.CopyTo(all, r.Context.Length);
        var seq = all.AsSpan(Math.Max(0, all.Length - (MaxLength + 1)));
        int input = seq.Length - 1, m = r.Continuation.Length;
        EnsureStates(1, input);
        var s = _states[0];
        s.Reset();
        var rows = new Rows(this);
        for (int j = 0; j < input; j++)
            rows.Add(s, seq[j], j >= input - m ? i : -2, seq[j + 1], sums, greedy);
        rows.Flush(sums, greedy);
    }

    private void EnsureStates(int count, int capacity)
    {
        for (int i = 0; i < _states.Count && i < count; i++)
            if (_states[i].Capacity < capacity) _states[i] = _model.CreateState(Round(capacity));
        while (_states.Count < count) _states.Add(_model.CreateState(Round(capacity)));
    }

    private int Round(int capacity) => Math.Min(Math.Max(capacity, (capacity + 127) / 128 * 128), Math.Max(capacity, _model.Config.ContextLength));

    private void Accumulate(ReadOnlySpan<float> logits, int target, int request, double[] sums, bool[] greedy)
    {
        sums[request] += Perplexity.LogSoftmax(logits, target, _scratch);
        if (TensorPrimitives.IndexOfMax(logits) != target) greedy[request] = false;
    }

    /// <summary>Rows gathered into batches of at most MaxBatch for ForwardRows.</summary>
    private ref struct Rows(LoglikelihoodScorer owner)
    {
        private int _count;

        /// <param name="request">the request the row's logits score (then <paramref name="target"/> is the token), -1 for the shared context's last row, -2 for no logits</param>
        public void Add(LlamaState state, int token, int request, int target, double[] sums, bool[] greedy)
        {
            if (_count == LlamaState.MaxBatch) Flush(sums, greedy);
            owner._rowStates[_count] = state;
            owner._rowTokens[_count] = token;
            owner._rowTargets[_count] = (request, target);
            _count++;
        }

        public void Flush(double[] sums, bool[] greedy)
        {
            if (_count == 0) return;
            int V = owner._model.Config.Vocab, m = 0;
            for (int b = 0; b < _count; b++)
                if (owner._rowTargets[b].Request != -2) owner._logitRows[m++] = b;
            owner._model.ForwardRows(owner._rowStates[0], owner._rowStates.AsSpan(0, _count), owner._rowTokens.AsSpan(0, _count),
                owner._logitRows.AsSpan(0, m), owner._logits.AsSpan(0, m * V));
            owner.TokensRun += _count;
            for (int i = 0; i < m; i++)
            {
                var (request, target) = owner._rowTargets[owner._logitRows[i]];
                var logits = owner._logits.AsSpan(i * V, V);
                if (request == -1) logits.CopyTo(owner._prefixLogits);
                else owner.Accumulate(logits, target, request, sums, greedy);
            }
            Array.Clear(owner._rowStates, 0, _count);
            _count = 0;
        }
    }
}
