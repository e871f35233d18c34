#!/usr/bin/env bash
# Measures captioner and PyTorch side by side on this machine, alternating, and writes all
# results as JSON lines to bench/results-<host>.jsonl (one run of this script = one set of
# figures for the README). Needs: a release build (cargo build --release), the Flickr8k
# features cached (target/release/captioner features ../shared/flickr8k; the attention
# decoder's section needs the feature maps too), and a PyTorch venv
# (tools/README.md) in $TORCH_VENV (default ~/torch-venv).
#
#   bash tools/bench_side_by_side.sh [FLICKR8K_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
FLICKR=${1:-../shared/flickr8k}
PY=${TORCH_VENV:-$HOME/torch-venv}/bin/python
BIN=target/release/captioner
OUT=bench/results-$(hostname).jsonl
mkdir -p bench
: > "$OUT"
IMAGES="$FLICKR/Flicker8k_Dataset"
N=${BENCH_IMAGES:-64}

echo "encoder: captioner, then PyTorch (2 threads), $N images" >&2
"$BIN" bench encoder --dir "$IMAGES" --n "$N" --reps 3 | grep "^{" | tee -a "$OUT"
"$PY" tools/bench_torch_encoder.py --dir "$IMAGES" --n "$N" --threads 2 --reps 3 | grep "^{" | tee -a "$OUT"

echo "decoder training epoch: captioner, then PyTorch (2 threads)" >&2
"$BIN" bench train "$FLICKR" | grep "^{" | tee -a "$OUT"
"$PY" tools/bench_torch_decoder.py --flickr "$FLICKR" --threads 2 --epochs 1 | grep "^{" | tee -a "$OUT"

echo "attention decoder training epoch: captioner, then PyTorch (2 threads)" >&2
"$BIN" bench train --decoder attention "$FLICKR" | grep "^{" | tee -a "$OUT"
"$PY" tools/bench_torch_attention.py --flickr "$FLICKR" --threads 2 --epochs 1 | grep "^{" | tee -a "$OUT"

echo "caption latency (warm, beam 3)" >&2
"$BIN" bench caption tests/fixtures/encoder/images/*.jpg --beam 3 --n 30 | grep "^{" | tee -a "$OUT"
echo "results in $OUT" >&2
