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
VENV=${CUDA_VENV:-$PWD/target/cuda-venv}
PY=${PYTHON:-python3}

if [ ! -x "$VENV/bin/pip" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --upgrade \
  "nvidia-cuda-nvcc-cu12==12.*" "nvidia-cuda-runtime-cu12==12.*" "nvidia-cuda-nvrtc-cu12==12.*" \
  "nvidia-cublas-cu12==12.*" "nvidia-curand-cu12==12.*" "nvidia-cuda-cccl-cu12==12.*"

SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
NV=$SITE/nvidia
# One CUDA tree the way nvcc and cudarc expect it: bin/, include/, lib64/.
ROOT=$PWD/target/cuda-root
rm -rf "$ROOT"
mkdir -p "$ROOT/bin" "$ROOT/include" "$ROOT/lib64"
ln -sf "$NV"/cuda_nvcc/bin/* "$ROOT/bin/"
[ -d "$NV/cuda_nvcc/nvvm" ] && ln -sfn "$NV/cuda_nvcc/nvvm" "$ROOT/nvvm"
for pkg in "$NV"/*/; do
  [ -d "$pkg/include" ] && cp -rs "$pkg"include/. "$ROOT/include/" 2>/dev/null || true
  [ -d "$pkg/lib" ] && for f in "$pkg"lib/*; do ln -sf "$f" "$ROOT/lib64/"; done
done
# Unversioned names for the linker.
for f in "$ROOT"/lib64/lib*.so.*; do
  base=${f%%.so.*}.so
  [ -e "$base" ] || ln -sf "$(readlink -f "$f")" "$base"
done

export CUDA_ROOT=$ROOT CUDA_PATH=$ROOT CUDA_HOME=$ROOT CUDA_TOOLKIT_ROOT_DIR=$ROOT
export PATH=$ROOT/bin:$PATH
export LD_LIBRARY_PATH=$ROOT/lib64:${LD_LIBRARY_PATH:-}
export LIBRARY_PATH=$ROOT/lib64:${LIBRARY_PATH:-}
export CUDA_COMPUTE_CAP=$CAP
nvcc --version | tail -1
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/cuda}
cargo build --release --features cuda
echo
echo "built $CARGO_TARGET_DIR/release/captioner with CUDA (compute capability $CAP). Run it with:"
echo "  export LD_LIBRARY_PATH=$ROOT/lib64:\$LD_LIBRARY_PATH"
