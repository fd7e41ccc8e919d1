#!/bin/sh
# Smoke test of `base-macos`: everything base has (it is base without CUDA, which base
# never had), and no NVIDIA library anywhere.
set -eu
sh /smoke/base.sh
if find / -xdev -type f \( -name 'libcuda.so*' -o -name 'libcudart.so*' -o -name 'libcudnn*.so*' -o -name 'libcublas*.so*' \) 2>/dev/null | grep -q .; then
    echo "FAIL: CUDA libraries found"; exit 1
fi
echo "ok: no CUDA libraries"
echo "smoke base-macos: passed"
