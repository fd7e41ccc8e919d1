#!/usr/bin/env bash
# Benchmarks Python resolution and installation against uv, in one run on this machine:
#   lock:    `carbon-store lock python-data` (both archs; Debian + Python) cold (no cached
#            wheel metadata) and warm, against `uv pip compile` of the same requirements for
#            both platforms, cold (empty cache) and warm;
#   install: `carbon-store realize python-data --arch amd64 --format oci` with the wheels in
#            the store: the Python layers built afresh (gzip and zstd; byte-code cache warm,
#            Debian layers reused) and every layer reused by its inputs, against
#            `uv pip install --target` with a warm cache: files only (uv compiles no
#            byte-code by default), and with byte-code packed into a zstd layer tar like ours;
#            uv runs --offline (from its cache, like carbon-store from its store).
# Prints hyperfine medians. Needs the network (the configured mirrors).
#   PARTS=install scripts/bench-python.sh    only the install part (locks once, untimed)
set -euo pipefail
parts=${PARTS:-lock install}
cd "$(dirname "$0")/.."
if ! command -v hyperfine >/dev/null || ! command -v zstd >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine zstd >/dev/null
fi
cargo build --release --quiet
bin=$PWD/target/release/carbon-store
work=$PWD/bench-out/python
rm -rf "$work" && mkdir -p "$work/locks"
python3 -m venv "$work/uv-venv" && "$work/uv-venv/bin/pip" install -q uv
uv=$work/uv-venv/bin/uv
reqs=$work/requirements.in
python3 - "$reqs" <<'PY'
import sys, tomllib
req = []
for c in ["python", "python-data", "jupyterlab"]:
    req += tomllib.load(open(f"recipes/components/{c}.toml", "rb"))["python"]["requirements"]
open(sys.argv[1], "w").write("\n".join(req) + "\n")
PY
bench() {
  local name=$1; shift
  hyperfine --export-json "$work/$name.json" "$@" >/dev/null
  python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print(f'{sys.argv[2]}: median {r[\"median\"]:.3f} s (min {r[\"min\"]:.3f}, max {r[\"max\"]:.3f}, {len(r[\"times\"])} runs)')" "$work/$name.json" "$name"
}
store=$work/store
lock="$bin --store $store --lockfiles $work/locks -q lock python-data"
uvc="$uv pip compile -q --python-version 3.13 --generate-hashes $reqs"
uvboth="$uvc --python-platform x86_64-manylinux_2_40 -o $work/uv-amd64.txt && $uvc --python-platform aarch64-manylinux_2_40 -o $work/uv-arm64.txt"
if [[ " $parts " == *" lock "* ]]; then
  echo "== lock python-data (Debian + Python, both archs) vs uv pip compile (both platforms)"
  bench "carbon-store lock cold" --runs 3 --prepare "rm -rf '$store/pypi-metadata' '$work/locks/python-data.lock'" "$lock"
  bench "carbon-store lock warm" --warmup 1 --runs 10 --prepare "rm -f '$work/locks/python-data.lock'" "$lock"
  bench "uv pip compile cold" --runs 3 --prepare "rm -rf '$work/uv-cache'" "UV_CACHE_DIR=$work/uv-cache sh -c '$uvboth'"
  bench "uv pip compile warm" --warmup 1 --runs 10 "UV_CACHE_DIR=$work/uv-cache sh -c '$uvboth'"
else
  eval "$lock"
  UV_CACHE_DIR=$work/uv-cache sh -c "$uvboth"
fi
[[ " $parts " == *" install "* ]] || exit 0
echo "== install (amd64) vs uv pip install --target, warm caches"
$bin --store "$store" --lockfiles "$work/locks" -q fetch python-data
realize="$bin --store $store --lockfiles $work/locks -q realize python-data --arch amd64 --format oci --out $work/oci-out"
eval "$realize" >/dev/null
eval "$realize --compression zstd" >/dev/null
# Python layers built afresh (wheels unpacked, verified, byte-code from its cache, tar,
# compression): their input records and layer-cache entries go; the Debian side's record
# (the one with \"diff_ids\") stays.
fresh_python="rm -rf '$store/realized' '$work/oci-out'; grep -L '\"diff_ids\"' '$store'/layers/inputs-* | xargs -r rm -f; find '$store/layers' -name '*.json' ! -name 'inputs-*' | xargs grep -l 'Python package' | xargs -r rm -f"
bench "carbon-store realize, Python layers built afresh (gzip)" --runs 5 --prepare "$fresh_python" "$realize"
bench "carbon-store realize, Python layers built afresh (zstd)" --runs 5 --prepare "$fresh_python" "$realize --compression zstd"
# Every layer known by its inputs: nothing is unpacked (the output directory is new).
bench "carbon-store realize, layers reused by their inputs" --runs 10 --prepare "rm -rf '$store/realized' '$work/oci-out'" "$realize"
UV_CACHE_DIR=$work/uv-cache $uv pip install -q --python-version 3.13 --python-platform x86_64-manylinux_2_40 --target "$work/uv-target" -r "$work/uv-amd64.txt"
bench "uv pip install --target (warm cache)" --runs 5 --prepare "rm -rf '$work/uv-target'" "UV_CACHE_DIR=$work/uv-cache $uv pip install -q --offline --python-version 3.13 --python-platform x86_64-manylinux_2_40 --target $work/uv-target -r $work/uv-amd64.txt"
uvtar="UV_CACHE_DIR=$work/uv-cache $uv pip install -q --offline --python-version 3.13 --python-platform x86_64-manylinux_2_40 --target $work/uv-target -r $work/uv-amd64.txt && tar -C $work/uv-target --sort=name -cf - . | zstd -q -T0 -3 -o $work/uv-layer.tar.zst"
bench "uv pip install --target + tar + zstd (warm cache)" --runs 3 --prepare "rm -rf '$work/uv-target' '$work/uv-layer.tar.zst'" "$uvtar"
uvlayer="UV_CACHE_DIR=$work/uv-cache $uv pip install -q --offline --compile-bytecode --python-version 3.13 --python-platform x86_64-manylinux_2_40 --target $work/uv-target -r $work/uv-amd64.txt && tar -C $work/uv-target --sort=name -cf - . | zstd -q -T0 -3 -o $work/uv-layer.tar.zst"
bench "uv pip install --target --compile-bytecode + tar + zstd (warm cache)" --runs 3 --prepare "rm -rf '$work/uv-target' '$work/uv-layer.tar.zst'" "$uvlayer"
echo "packages: carbon-store $(grep -c 'file = ' "$work/locks/python-data.lock") wheel pins (both archs), uv $(grep -c '==' "$work/uv-amd64.txt") (amd64)"
