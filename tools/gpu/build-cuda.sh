#!/bin/bash
# Builds `rebar` with the `cuda` feature on a machine that needs no CUDA toolkit and no GPU, and
# packs it for training on a CUDA machine (tools/gpu/README.md).
#
# - nvcc, its headers (CCCL) and the runtime come from NVIDIA's wheels on PyPI.
# - candle links the CUDA libraries dynamically. Only the runtime is in those wheels, so the
#   driver, cuBLAS and cuRAND are linked against stub libraries carrying the real sonames;
#   the GPU machine supplies the real ones at run time (run.sh links them into one folder).
#
# Usage: tools/gpu/build-cuda.sh [COMPUTE_CAP]   (default 90: H100 / H200)
# Output: .gpu/rebar.xz (stripped, compressed) beside .gpu/train.safetensors.xz and
# .gpu/valid.safetensors from runs/.
set -euo pipefail
cd "$(dirname "$0")/../.."
CAP=${1:-90}
WORK=${REBAR_CUDA_WORK:-/tmp/rebar-cuda}
TOOLKIT=$WORK/root/nvidia/cu13
if [ ! -x "$TOOLKIT/bin/nvcc" ]; then
  mkdir -p "$WORK/wheels"
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_27_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux_2_12_x86_64 --platform manylinux2010_x86_64 -d "$WORK/wheels" \
    'nvidia-cuda-nvcc==13.0.*' 'nvidia-cuda-runtime==13.0.*' 'nvidia-cuda-crt==13.0.*' \
    'nvidia-nvvm==13.0.*' 'nvidia-cuda-cccl==13.0.*'
  for wheel in "$WORK"/wheels/*.whl; do unzip -q -o "$wheel" -d "$WORK/root"; done
  ln -sfn lib "$TOOLKIT/lib64"
fi
export PATH=$TOOLKIT/bin:$PATH CUDA_HOME=$TOOLKIT CUDA_PATH=$TOOLKIT CUDA_COMPUTE_CAP=$CAP

# Stubs: every symbol the link needs from a library the wheels lack, as an empty function.
STUBS=$WORK/stubs
mkdir -p "$STUBS"
cat > "$STUBS/symbols.txt" <<'SYMBOLS'
SYMBOLS
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/cuda}
export RUSTFLAGS="-L native=$STUBS -C link-arg=-Wl,--error-limit=0"
ln -sf "$TOOLKIT/lib/libcudart.so.13" "$STUBS/libcudart.so"
make_stubs() {
  while read -r lib soname pattern; do
    grep -E "$pattern" "$STUBS/symbols.txt" | sed 's/.*/void &(void) {}/' > "$STUBS/$lib.c" || true
    gcc -shared -fPIC -o "$STUBS/lib$lib.so" "$STUBS/$lib.c" -Wl,-soname,"$soname"
  done <<'LIBS'
cuda libcuda.so.1 ^cu[A-Z]
cublasLt libcublasLt.so.13 ^cublasLt
cublas libcublas.so.13 ^cublas[^L]
curand libcurand.so.10 ^curand
nvrtc libnvrtc.so.13 ^nvrtc
LIBS
}
make_stubs
# The first link lists the undefined symbols; the stubs are rebuilt from them and the link rerun.
if ! cargo build --release -p rebar-tools --features cuda 2> "$WORK/link.log"; then
  grep -o 'undefined symbol: [A-Za-z0-9_]*' "$WORK/link.log" | awk '{print $3}' | sort -u > "$STUBS/symbols.txt"
  [ -s "$STUBS/symbols.txt" ] || { tail -30 "$WORK/link.log"; exit 1; }
  make_stubs
  cargo build --release -p rebar-tools --features cuda
fi
mkdir -p .gpu
strip -o .gpu/rebar "$CARGO_TARGET_DIR/release/rebar"
xz -T2 -9e -f .gpu/rebar
xz -9e -c runs/train.safetensors > .gpu/train.safetensors.xz
cp runs/valid.safetensors .gpu/
ls -la .gpu
