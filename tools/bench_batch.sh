#!/usr/bin/env bash
# The folder and latency figures of docs/speed.md, in one run, for both shipped models:
#  1. `captioner bench batch` on the 1,000 Flickr8k dev photos (copied into a scratch folder),
#     which also times the encoder alone and the batched search alone on the same photos;
#  2. the same on 200 12-megapixel JPEGs (tools/make_big_photos.py; needs Pillow);
#  3. `captioner bench caption` (one photo, warm, beam 3).
# Appends one JSON line per measurement to bench/results-batch.jsonl (with the CPU model).
#
#   bash tools/bench_batch.sh [FLICKR8K_DIR] [SCRATCH_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/flickr8k}
SCRATCH=${2:-/tmp/captioner-bench}
BIN=${BIN:-target/release/captioner}
OUT=bench/results-batch.jsonl
[ -x "$BIN" ] || cargo build --release
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')

mkdir -p "$SCRATCH/dev1000"
while read -r name; do
  [ -n "$name" ] && [ ! -e "$SCRATCH/dev1000/$name" ] && cp "$DATA/Flicker8k_Dataset/$name" "$SCRATCH/dev1000/$name"
done < "$DATA/Flickr8k_text/Flickr_8k.devImages.txt"
if [ "${SKIP_BIG:-0}" != 1 ]; then
  python3 tools/make_big_photos.py "$DATA/Flicker8k_Dataset" "$SCRATCH/big12mp" 200 >/dev/null
fi

stamp() { python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); d["cpu"]=sys.argv[1]; d["date"]=sys.argv[2]; print(json.dumps(d, sort_keys=True))' "$cpu" "$(date -u +%F)"; }

for model in models/default models/merge; do
  "$BIN" bench batch "$SCRATCH/dev1000" --model "$model" | tail -1 | stamp | tee -a "$OUT"
  if [ "${SKIP_BIG:-0}" != 1 ]; then
    "$BIN" bench batch "$SCRATCH/big12mp" --model "$model" | tail -1 | stamp | tee -a "$OUT"
  fi
  "$BIN" bench caption "$SCRATCH"/dev1000/1*.jpg --model "$model" --beam 3 --n 30 | tail -1 | stamp | tee -a "$OUT"
done
