// Evaluate a token-id sequence with llama.cpp in one batch, logits at every position,
// write them as raw float32 [T, vocab] (row-major).
// usage: ggml_logits MODEL.gguf OUT.bin THREADS KVTYPE(f32|f16) id0 id1 ...
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "llama.h"

static void quiet_log(enum ggml_log_level level, const char * text, void * ud) {
    (void)ud;
    if (level >= GGML_LOG_LEVEL_WARN) fputs(text, stderr);
}

int main(int argc, char ** argv) {
    if (argc < 6) { fprintf(stderr, "usage: %s model.gguf out.bin threads f32|f16 ids...\n", argv[0]); return 2; }
    const char * path = argv[1], * out = argv[2];
    int threads = atoi(argv[3]);
    enum ggml_type kv = strcmp(argv[4], "f16") == 0 ? GGML_TYPE_F16 : GGML_TYPE_F32;
    int T = argc - 5;

    llama_log_set(quiet_log, NULL);
    llama_backend_init();

    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    mp.use_mmap = true;
    struct llama_model * model = llama_model_load_from_file(path, mp);
    if (!model) { fprintf(stderr, "load failed\n"); return 1; }
    const struct llama_vocab * vocab = llama_model_get_vocab(model);
    int n_vocab = llama_vocab_n_tokens(vocab);

    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = T < 256 ? 256 : T;
    cp.n_batch = cp.n_ctx;
    cp.n_ubatch = cp.n_ctx;   // one physical batch: all T tokens in one graph
    cp.n_seq_max = 1;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    cp.type_k = kv;
    cp.type_v = kv;
    cp.flash_attn = false;
    cp.offload_kqv = false;
    cp.no_perf = true;
    struct llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "context failed\n"); return 1; }

    struct llama_batch b = llama_batch_init(T, 0, 1);
    for (int i = 0; i < T; i++) {
        b.token[i] = atoi(argv[5 + i]);
        b.pos[i] = i;
        b.n_seq_id[i] = 1;
        b.seq_id[i][0] = 0;
        b.logits[i] = 1;
    }
    b.n_tokens = T;
    int rc = llama_decode(ctx, b);
    if (rc != 0) { fprintf(stderr, "decode rc=%d\n", rc); return 1; }

    FILE * f = fopen(out, "wb");
    if (!f) { perror(out); return 1; }
    for (int i = 0; i < T; i++) {
        const float * l = llama_get_logits_ith(ctx, i);
        if (!l) { fprintf(stderr, "no logits at %d\n", i); return 1; }
        fwrite(l, sizeof(float), n_vocab, f);
    }
    fclose(f);
    fprintf(stderr, "%s: T=%d vocab=%d threads=%d kv=%s -> %s\n", path, T, n_vocab, threads, argv[4], out);

    llama_batch_free(b);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
