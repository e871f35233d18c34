#!/usr/bin/env bash
# Measures captioner and PyTorch side by side on this machine, alternating, and writes all
# results as JSON lines to bench/results-<host>.jsonl (one run of this script = one set of
# figures for the README). Needs: a release build (cargo build --release), the Flickr8k
# features cached (target/release/captioner features ../shared/flickr8k; the attention
# decoder's section needs the feature maps too), and a PyTorch venv
# (tools/README.md) in $TORCH_VENV (default ~/torch-venv).
#
#   bash tools/bench_side_by_side.sh [FLICKR8K_DIR]
#   SECTIONS="attention caption" bash tools/bench_side_by_side.sh   # some sections only
#
# Sections: encoder, train (merge decoder epoch), attention (attention decoder epoch, from the
# cached feature maps: `captioner features --spatial` first), caption (latency of both
# shipped models). Results are appended to bench/results-<host>.jsonl when SECTIONS is set.
set -euo pipefail
cd "$(dirname "$0")/.."
FLICKR=${1:-../shared/flickr8k}
PY=${TORCH_VENV:-$HOME/torch-venv}/bin/python
BIN=target/release/captioner
OUT=bench/results-$(hostname).jsonl
mkdir -p bench
SECTIONS=${SECTIONS:-}
if [ -z "$SECTIONS" ]; then
  : > "$OUT"
  SECTIONS="encoder train attention caption"
fi
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
IMAGES="$FLICKR/Flicker8k_Dataset"
N=${BENCH_IMAGES:-64}

if want encoder; then
echo "encoder: captioner, then PyTorch (2 threads), $N images" >&2
"$BIN" bench encoder --dir "$IMAGES" --n "$N" --reps 3 | grep "^{" | tee -a "$OUT"
"$PY" tools/bench_torch_encoder.py --dir "$IMAGES" --n "$N" --threads 2 --reps 3 | grep "^{" | tee -a "$OUT"
fi

if want train; then
echo "decoder training epoch: captioner, then PyTorch (2 threads)" >&2
"$BIN" bench train "$FLICKR" | grep "^{" | tee -a "$OUT"
"$PY" tools/bench_torch_decoder.py --flickr "$FLICKR" --threads 2 --epochs 1 | grep "^{" | tee -a "$OUT"
fi

if want attention; then
echo "attention decoder training epoch: captioner, then PyTorch (2 threads)" >&2
CACHE=${CAPTIONER_CACHE:-${XDG_DATA_HOME:-$HOME/.local/share}/captioner/cache}
"$BIN" bench train --decoder attention "$FLICKR" | grep "^{" | tee -a "$OUT"
"$PY" tools/bench_torch_attention.py --flickr "$FLICKR" --threads 2 --epochs 1 \
  --features-cache "$CACHE" | grep "^{" | tee -a "$OUT"
fi

if want caption; then
echo "caption latency (warm, beam 3): the merge model, then the default attention model (maps included)" >&2
for model in models/merge models/default; do
  "$BIN" bench caption tests/fixtures/encoder/images/*.jpg --model "$model" --beam 3 --n 30 \
    | grep "^{" | tee -a "$OUT"
done
fi
echo "results in $OUT" >&2
