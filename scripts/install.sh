#!/usr/bin/env bash
# Install kodolly into the active Python environment with the given extras (default: everything + tests),
# taking the right torch build first so the training extra never pulls a multi-GB CUDA build by accident:
#   - a machine with an NVIDIA GPU (nvidia-smi works): torch from PyPI, whose Linux wheels are CUDA builds;
#   - a machine without one: the CPU build, from PyTorch's CPU index (or, where that index cannot be reached,
#     from the package mirror pip is configured with).
# Set KODOLLY_TORCH=skip to leave torch alone (you installed your own), or KODOLLY_TORCH_VERSION to pin another.
set -euo pipefail
extras="${1:-all,train,test}"
python="${PYTHON:-python}"
torch_version="${KODOLLY_TORCH_VERSION:-2.13.0}"
cd "$(dirname "$0")/.."

if [[ "$extras" == *train* && "${KODOLLY_TORCH:-}" != "skip" ]]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "install: NVIDIA GPU found: installing the CUDA build of torch ${torch_version}"
    "$python" -m pip install "torch==${torch_version}"
  else
    echo "install: no GPU: installing the CPU build of torch ${torch_version}"
    "$python" -m pip install --timeout 20 --retries 1 \
        --extra-index-url https://download.pytorch.org/whl/cpu "torch==${torch_version}"
  fi
fi
"$python" -m pip install -e ".[${extras}]"
