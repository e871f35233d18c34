#!/usr/bin/env bash
# Measures `captioner watch` (docs/watch.md):
#  1. the latency from copying one photo into an idle watched folder to its .txt sidecar
#     (three photos, one after the other);
#  2. a burst: N photos (10,000 by default) copied in at once; the time until all N sidecars
#     exist, and the watcher's peak resident memory (VmHWM of /proc/PID/status at the end).
# The photos are copies of the Flickr8k photos in ../shared/flickr8k when that is there
# (links resolved), else of the fixture photos in tests/fixtures/encoder/images.
#
#   bash tools/watch_burst.sh [N] [SCRATCH_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
SCRATCH=${2:-/tmp/captioner-watch-burst}
BIN=${BIN:-target/release/captioner}
[ -x "$BIN" ] || cargo build --release
if [ -d ../shared/flickr8k/Flicker8k_Dataset ]; then
  SRC=../shared/flickr8k/Flicker8k_Dataset
else
  SRC=tests/fixtures/encoder/images
fi
mapfile -t photos < <(find -L "$SRC" -maxdepth 1 -type f -name '*.jpg' | sort)
[ "${#photos[@]}" -gt 0 ] || { echo "no photos in $SRC" >&2; exit 1; }

rm -rf "$SCRATCH"
mkdir -p "$SCRATCH/stage" "$SCRATCH/watched" "$SCRATCH/home"
echo "staging $N copies of the ${#photos[@]} photos of $SRC" >&2
for ((i = 0; i < N; i++)); do
  cp -L "${photos[i % ${#photos[@]}]}" "$SCRATCH/stage/$(printf 'burst-%05d.jpg' "$i")"
done

now() { date +%s.%N; }
HOME="$SCRATCH/home" "$BIN" watch "$SCRATCH/watched" --sidecars \
  >"$SCRATCH/stdout.log" 2>"$SCRATCH/stderr.log" &
pid=$!
trap 'kill -INT $pid 2>/dev/null || true' EXIT
until grep -q 'Ctrl-C stops' "$SCRATCH/stderr.log"; do
  kill -0 $pid 2>/dev/null || { cat "$SCRATCH/stderr.log" >&2; exit 1; }
  sleep 0.2
done

for i in 1 2 3; do
  sleep 2 # idle between photos
  t0=$(now)
  cp -L "${photos[0]}" "$SCRATCH/watched/latency-$i.jpg"
  until [ -e "$SCRATCH/watched/latency-$i.txt" ]; do sleep 0.01; done
  t1=$(now)
  printf '{"measure":"copy_to_sidecar_idle","photo":%d,"seconds":%.3f}\n' "$i" "$(echo "$t1 - $t0" | bc)"
done
rss_before=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)

t0=$(now)
cp -a "$SCRATCH/stage/." "$SCRATCH/watched/"
t_copied=$(now)
peak_rss=0
while :; do
  done_n=$(find "$SCRATCH/watched" -maxdepth 1 -name 'burst-*.txt' | wc -l)
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  [ "$rss" -gt "$peak_rss" ] && peak_rss=$rss
  [ "$done_n" -ge "$N" ] && break
  kill -0 $pid 2>/dev/null || { echo "the watcher ended early" >&2; tail "$SCRATCH/stderr.log" >&2; exit 1; }
  sleep 1
done
t1=$(now)
hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
errors=$(grep -c '^error' "$SCRATCH/stderr.log" || true)
printf '{"measure":"burst","photos":%d,"copy_seconds":%.1f,"seconds_to_all_sidecars":%.1f,"photos_per_second":%.2f,"vm_hwm_mb":%.1f,"sampled_peak_rss_mb":%.1f,"rss_idle_before_mb":%.1f,"errors":%d,"cpus":%d}\n' \
  "$N" "$(echo "$t_copied - $t0" | bc)" "$(echo "$t1 - $t0" | bc)" "$(echo "$N / ($t1 - $t0)" | bc -l)" \
  "$(echo "$hwm / 1024" | bc -l)" "$(echo "$peak_rss / 1024" | bc -l)" "$(echo "$rss_before / 1024" | bc -l)" "$errors" "$(nproc)"
kill -INT $pid
wait $pid || true
trap - EXIT
tail -1 "$SCRATCH/stderr.log" >&2
