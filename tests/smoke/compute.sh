#!/bin/sh
# Smoke test of `compute`: base, plus the ML stack (CUDA-enabled builds, run on CPU here).
set -eu
sh /smoke/base.sh
sh /smoke/ml-checks.sh
python -c 'import importlib.metadata as m; print("vllm", m.version("vllm"))'
echo "smoke compute: passed"
