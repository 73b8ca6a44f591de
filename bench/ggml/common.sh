# Sourced by the scripts beside it, after they set $src (a llama.cpp tree built in build/) and $work.
# Sets $root and $duet (the Release CLI, built), enters $work, builds ./ggml_logits against libllama and, with
# NOAMX=1, ./noamx.so, with $pre the command prefix that preloads it (empty otherwise).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
"$root/duet" --help > /dev/null
duet=(dotnet "$root/src/Duet.Cli/bin/Release/net10.0/duet.dll")
mkdir -p "$work" && cd "$work"
gcc -O2 -o ggml_logits "$root/bench/ggml/ggml_logits.c" -I"$src/include" -I"$src/ggml/include" \
  -L"$src/build/bin" -Wl,-rpath,"$src/build/bin" -lllama -lggml -lggml-base
pre=()
if [ "${NOAMX:-0}" = 1 ]; then gcc -O2 -shared -fPIC -o noamx.so "$root/bench/ggml/noamx.c" -ldl; pre=(env LD_PRELOAD="$PWD/noamx.so"); fi
