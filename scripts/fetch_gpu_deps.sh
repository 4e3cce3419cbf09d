#!/usr/bin/env bash
# `make gpu-deps`: download into .gpu-deps/ (git-ignored) what the GPU machine lacks, for
# `python3 scripts/gpu_check.py` there (no network there; the device tool carries at most 64 MiB):
#   .gpu-deps/wheels/     transformers at the version this venv runs (>= the project's floor 5.24; the
#                         machine has 5.17), peft and regex as here (installed there only if its own are
#                         older), bitsandbytes (QLoRA; the machine has none) for CUDA 13 (libbitsandbytes_cuda130)
#   .gpu-deps/tokenizer/  the default student's tokenizer files (SmolLM2-135M-Instruct, pad token set),
#                         exported from the test cache: the 100+ MB GGUF does not travel
# The total must stay <= 60 MiB; if bitsandbytes would pass that, it is left out and the QLoRA check
# records "skipped: bitsandbytes not installed".
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DEST=.gpu-deps
LIMIT_MIB=60
BNB=${BNB:-0.50.2}
version() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }
download() {
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$1" "${@:2}"
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
download "$tmp" "transformers==$(version transformers)" "peft==$(version peft)" "regex==$(version regex)"
base=$(du -cb "$tmp"/*.whl | tail -1 | cut -f1)
download "$tmp/bnb" "bitsandbytes==$BNB"
bnb=$(du -cb "$tmp"/bnb/*.whl | tail -1 | cut -f1)
rm -rf "$DEST/wheels" "$DEST/site" "$DEST/tokenizer"
mkdir -p "$DEST/wheels"
"$PY" scripts/gpu_check.py --no-deps --export-tokenizer "$DEST/tokenizer" >/dev/null
tok=$(du -sb "$DEST/tokenizer" | cut -f1)
mv "$tmp"/*.whl "$DEST/wheels/"
if (( base + bnb + tok <= LIMIT_MIB * 1024 * 1024 )); then
  mv "$tmp"/bnb/*.whl "$DEST/wheels/"
else
  echo "bitsandbytes ($((bnb / 1024 / 1024)) MiB) does not fit in $LIMIT_MIB MiB: left out (QLoRA check will be skipped)"
fi
ls -l "$DEST/wheels"
echo "$(du -sb "$DEST" | cut -f1) bytes in $DEST ($(du -sh "$DEST" | cut -f1)); on the GPU machine:"
echo "  python3 scripts/gpu_check.py --out \$OUT/gpu_check.json     (device tool: carry [\".gpu-deps\"])"
