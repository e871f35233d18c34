#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer) of every parser and loader; see docs/fuzzing.md.
#
#   tools/fuzz.sh [MINUTES] [TARGET...]   run each target (default: all) for MINUTES (default 1)
#   tools/fuzz.sh --ci                    run each target for a few seconds (CI smoke run)
#   tools/fuzz.sh --build                 only build the targets
#
# Needs: the stable Rust toolchain and a C++ compiler (libfuzzer-sys builds libFuzzer from
# source; Debian: g++). Runs one fuzzer process at a time. Inputs that crash are written to
# fuzz/artifacts/TARGET/ and the script exits 1. New inputs go to fuzz/work/TARGET/ (ignored
# by git); the committed seeds are fuzz/corpus/TARGET/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fuzz="$root/fuzz"
all_targets=(flickr8k_tokens flickr8k_split kaggle_csv coco_json sidecar model_dir feature_cache app_state batch_session image_loader)

seconds=60
build_only=no
case "${1:-}" in
  --ci) seconds="${FUZZ_CI_SECONDS:-5}"; shift ;;
  --build) build_only=yes; shift ;;
  ""|-*) ;;
  *) seconds=$(( $1 * 60 )); shift ;;
esac
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")

export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$fuzz/target}"
echo "building the fuzz targets (instrumented) in $CARGO_TARGET_DIR ..."
(cd "$fuzz" && RUSTC_WRAPPER="$root/tools/fuzz-rustc.sh" cargo build --release --locked --bins)
[ "$build_only" = yes ] && exit 0

options_for() {
  case "$1" in
    coco_json) echo "-max_len=4096 -dict=$fuzz/dict/json.dict" ;;
    model_dir) echo "-max_len=8192 -dict=$fuzz/dict/json.dict" ;;
    feature_cache) echo "-max_len=2048 -dict=$fuzz/dict/json.dict" ;;
    app_state) echo "-max_len=2048 -dict=$fuzz/dict/ron.dict" ;;
    batch_session) echo "-max_len=4096 -dict=$fuzz/dict/json.dict" ;;
    image_loader) echo "-max_len=16384" ;;
    *) echo "-max_len=4096 -dict=$fuzz/dict/lines.dict" ;;
  esac
}

mkdir -p "$fuzz/work/logs"
failed=0
total=0
printf '\n%-16s %14s %10s %8s  %s\n' target executions exec/s crashes log
for t in "${targets[@]}"; do
  work="$fuzz/work/$t"
  artifacts="$fuzz/artifacts/$t"
  mkdir -p "$work" "$artifacts"
  log="$fuzz/work/logs/$t.log"
  # shellcheck disable=SC2046
  set +e
  "$CARGO_TARGET_DIR/release/$t" $(options_for "$t") \
    -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$work" "$fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  set -e
  # The model folder and cache targets write their input to a scratch folder named after the
  # process; remove it.
  rm -rf /dev/shm/captioner-fuzz-* "${TMPDIR:-/tmp}"/captioner-fuzz-*
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  crashes=$(find "$artifacts" -type f | wc -l)
  execs=${execs:-0}
  total=$((total + execs))
  printf '%-16s %14s %10s %8s  %s\n' "$t" "$execs" "${rate:-?}" "$crashes" "${log#"$root"/}"
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    failed=1
    echo "  $t failed (exit $rc); see $log and $artifacts" >&2
    grep -m3 -E 'panicked|ERROR|SUMMARY' "$log" >&2 || true
  fi
done
printf '%-16s %14s\n' total "$total"
exit "$failed"
