#!/bin/sh
# Smoke test of `compute`: base, plus the ML stack (CUDA-enabled builds, run on CPU here).
set -eu
sh /smoke/base.sh
sh /smoke/ml-checks.sh
EXTRA_LAB_EXTENSIONS=jupyterlab-nvdashboard sh /smoke/jupyter-checks.sh
python -c 'import jupyterlab_nvdashboard'
# TensorFlow, then Triton, in one process: with TensorFlow's RTLD_GLOBAL helper this
# crashed (recipes/components/tensorflow.toml).
python -c 'import tensorflow, triton; print("tensorflow then triton", triton.__version__)'
# vLLM imports (its CUDA kernels load lazily, so the import works without a GPU).
python -c 'import vllm; print("vllm", vllm.__version__)'
echo "smoke compute: passed"
