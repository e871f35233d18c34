#!/usr/bin/env bash
# Builds captioner with candle's CUDA backend (`--features cuda`) using only the package
# registries: the CUDA compiler, headers and libraries come from PyPI's `nvidia-*` wheels.
#
#   bash tools/build_cuda.sh [COMPUTE_CAP]     # e.g. 90 for H100/H200, 80 for A100, 89 for L4
#
# The result is target/cuda/release/captioner (a target folder of its own, so the CPU build in
# target/release stays as it is); run it with the environment printed at the end
# (LD_LIBRARY_PATH pointing at the wheels' libraries). The machine that builds needs no GPU;
# the one that runs needs an NVIDIA driver. Without a usable GPU the binary runs on the CPU
# and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
CAP=${1:-${CUDA_COMPUTE_CAP:-90}}
VENV=${CUDA_VENV:-$PWD/target/cuda13-venv}
PY=${PYTHON:-python3}

if [ ! -x "$VENV/bin/pip" ]; then
  "$PY" -m venv "$VENV"
fi
# CUDA 13 wheels: nvidia-cuda-nvcc has the whole compiler driver (the -cu12 wheels ship only
# ptxas). All of them unpack under site-packages/nvidia/cu13/{bin,include,lib}. The toolkit is
# pinned to 13.4, the newest CUDA that candle's cudarc (0.19.10) knows.
CUDA_PIN=${CUDA_PIN:-13.4.92}
"$VENV/bin/pip" install --quiet \
  "nvidia-cuda-nvcc==$CUDA_PIN" "nvidia-nvvm==$CUDA_PIN" "nvidia-cuda-crt==$CUDA_PIN" \
  "nvidia-cuda-runtime==$CUDA_PIN" "nvidia-cuda-nvrtc==$CUDA_PIN" \
  nvidia-cublas nvidia-curand nvidia-cuda-cccl

SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# One CUDA tree the way nvcc and cudarc expect it: bin/, include/, lib64/ (+ nvvm/).
ROOT=$PWD/target/cuda-root
rm -rf "$ROOT"
mkdir -p "$ROOT/bin" "$ROOT/include" "$ROOT/lib64"
while IFS= read -r d; do
  case "$d" in
    */bin) cp -rsf "$d/." "$ROOT/bin/" ;;
    */include) cp -rsf "$d/." "$ROOT/include/" ;;
    */lib|*/lib64) cp -rsf "$d/." "$ROOT/lib64/" ;;
    */nvvm) ln -sfn "$d" "$ROOT/nvvm" ;;
  esac
done < <(find "$SITE/nvidia/cu13" -mindepth 1 -maxdepth 1 -type d \( -name bin -o -name include -o -name lib -o -name lib64 -o -name nvvm \) | sort)
# Unversioned names for the linker; libcuda (the driver) is linked against the toolkit's stub
# when the build machine has no driver.
for f in "$ROOT"/lib64/lib*.so.*; do
  [ -e "$f" ] || continue
  base=${f%%.so.*}.so
  [ -e "$base" ] || ln -sf "$(readlink -f "$f")" "$base"
done
if [ ! -e "$ROOT/lib64/libcuda.so" ] && [ -e "$ROOT/lib64/stubs/libcuda.so" ]; then
  ln -sf "$ROOT/lib64/stubs/libcuda.so" "$ROOT/lib64/libcuda.so"
fi

export CUDA_ROOT=$ROOT CUDA_PATH=$ROOT CUDA_HOME=$ROOT CUDA_TOOLKIT_ROOT_DIR=$ROOT
export PATH=$ROOT/bin:$PATH
export LD_LIBRARY_PATH=$ROOT/lib64:${LD_LIBRARY_PATH:-}
export LIBRARY_PATH=$ROOT/lib64:${LIBRARY_PATH:-}
export CUDA_COMPUTE_CAP=$CAP
nvcc --version | tail -1
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/cuda}
# cudarc links against the driver library (libcuda), which comes with the NVIDIA driver, not
# with the toolkit wheels. On a build machine without a driver, link against a stub that
# defines the driver functions cudarc uses, named libcuda.so.1 like the real one, so the
# driver's own library is the one loaded at run time. (Each stub function returns 100,
# CUDA_ERROR_NO_DEVICE, should the stub ever be loaded.)
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1' && [ ! -e "$ROOT/lib64/libcuda.so" ]; then
  cargo build --release -p captioner --features cuda --lib   # no linking yet: makes the cudarc library
  rlib=$(ls -t "$CARGO_TARGET_DIR"/release/deps/libcudarc-*.rlib | head -1)
  nm -u "$rlib" | awk '$1=="U" && $2 ~ /^cu[A-Z]/ {print "int " $2 "(void) { return 100; }"}' | sort -u > "$ROOT/cuda_stub.c"
  mkdir -p "$ROOT/lib64/stubs"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$ROOT/lib64/stubs/libcuda.so" "$ROOT/cuda_stub.c"
  ln -sf stubs/libcuda.so "$ROOT/lib64/libcuda.so"
  echo "no NVIDIA driver here: linking against a stub libcuda ($(wc -l < "$ROOT/cuda_stub.c") functions)"
fi
cargo build --release -p captioner-cli --features cuda   # the binary; captioner-cli/cuda turns on captioner/cuda
echo
echo "built $CARGO_TARGET_DIR/release/captioner with CUDA (compute capability $CAP). Run it with:"
echo "  export LD_LIBRARY_PATH=$ROOT/lib64:\$LD_LIBRARY_PATH"
