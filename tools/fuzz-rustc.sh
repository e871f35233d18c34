#!/bin/sh
# RUSTC_WRAPPER for the fuzz build (tools/fuzz.sh): adds libFuzzer's coverage instrumentation
# (SanitizerCoverage, stable rustc flags) and debug assertions with overflow checks to the crates
# under test (captioner, the fuzz targets, the CSV parser); every other crate is compiled as
# usual, so the build reuses what a normal release build made.
rustc="$1"
shift
instrument=no
case " $* " in
  *" --crate-name captioner "* | *" --crate-name csv "* | *" --crate-name csv_core "* | *"fuzz_targets/"*)
    instrument=yes ;;
esac
if [ "$instrument" = yes ]; then
  exec "$rustc" "$@" \
    -Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    --cfg fuzzing -Cdebug-assertions -Coverflow-checks
fi
exec "$rustc" "$@"
