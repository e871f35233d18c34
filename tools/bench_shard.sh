#!/usr/bin/env bash
# The throughput figures of docs/cluster.md: one shard of the 1,000 Flickr8k dev photos
# (`captioner batch --files-from LIST --shard 0/1 --out ...`) with --threads 1 and 2, beside
# `captioner bench batch` on the same folder (the README's folder figure), in alternation, so
# that all three see the same machine load. Prints photos/s of every run and the medians;
# appends one JSON line per round to bench/results-shard.jsonl (with the CPU model and load).
#
#   [LIMIT=N] bash tools/bench_shard.sh [FLICKR8K_DIR] [ROUNDS]   (LIMIT: the first N photos only)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/flickr8k}
ROUNDS=${2:-3}
BIN=${BIN:-target/release/captioner}
SCRATCH=${SCRATCH:-/tmp/captioner-bench}
OUT=bench/results-shard.jsonl
[ -x "$BIN" ] || cargo build --release
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')

mkdir -p "$SCRATCH/dev1000"
while read -r name; do
  [ -n "$name" ] && [ ! -e "$SCRATCH/dev1000/$name" ] && cp "$DATA/Flicker8k_Dataset/$name" "$SCRATCH/dev1000/$name"
done < "$DATA/Flickr8k_text/Flickr_8k.devImages.txt"
LIMIT=${LIMIT:-1000}
find "$SCRATCH/dev1000" -name '*.jpg' | sort | head -n "$LIMIT" > "$SCRATCH/list.txt"
n=$(wc -l < "$SCRATCH/list.txt")

shard_rate() { # threads -> photos/s from the manifest
  rm -rf "$SCRATCH/shard"
  "$BIN" batch --files-from "$SCRATCH/list.txt" --shard 0/1 --out "$SCRATCH/shard" --threads "$1" >/dev/null
  python3 -c 'import json,sys; print("%.1f" % json.load(open(sys.argv[1]))["timings"]["photos_per_second"])' "$SCRATCH/shard/shard-0-of-1.done.json"
}
bench_rate() {
  "$BIN" bench batch "$SCRATCH/dev1000" --limit "$LIMIT" | tail -1 | python3 -c 'import json,sys; print("%.1f" % json.loads(sys.stdin.read())["photos_per_s"])'
}

echo "$n photos; rounds: $ROUNDS; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %14s %14s %14s\n' round "bench batch" "shard -t 2" "shard -t 1"
for r in $(seq 1 "$ROUNDS"); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  b=$(bench_rate); t2=$(shard_rate 2); t1=$(shard_rate 1)
  printf '%-6s %14s %14s %14s\n' "$r" "$b" "$t2" "$t1"
  printf '{"bench_batch": %s, "shard_threads_2": %s, "shard_threads_1": %s, "photos": %s, "load1": %s, "cpu": "%s", "date": "%s"}\n' \
    "$b" "$t2" "$t1" "$n" "$load" "$cpu" "$(date -u +%F)" >> "$OUT"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
