#!/bin/sh
# Smoke test of `compute-macos`: base-macos, plus the CPU ML stack.
set -eu
sh /smoke/base-macos.sh
sh /smoke/ml-checks.sh
sh /smoke/jupyter-checks.sh
python -c 'import torch; assert not torch.cuda.is_available(); print("torch is CPU-only")'
echo "smoke compute-macos: passed"
