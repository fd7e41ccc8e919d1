#!/usr/bin/env bash
# Peak disk and memory of building one image and arch and pushing it, from a store that
# holds only the image's sources (fetched first), in one run on this machine: with
# `--format none` (each layer leaves the store once the registry has it) against
# `--format oci` (the layers stay, hard-linked into the layout). Disk is the store (sources,
# spill files, layers) plus the output directory, sampled every second. The registry is
# Debian's docker-registry on 127.0.0.1, its storage inside the clone (not counted).
#   scripts/bench-push-disk.sh              # IMAGE=compute ARCH=amd64 by default
# Figures are in docs/registry.md.
set -euo pipefail
cd "$(dirname "$0")/.."
image=${IMAGE:-compute}
arch=${ARCH:-amd64}
command -v docker-registry >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null; }
[ -x /usr/bin/time ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
cargo build --release --quiet
bin=$PWD/target/release/carbon-store
work=$PWD/bench-out/push-disk
# The store's sources are kept between runs of this script (they are 7 GB for compute);
# everything built is removed before each measured run.
rm -rf "$work/registry" "$work/out" && mkdir -p "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<YML
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
trap 'kill $registry_pid 2>/dev/null' EXIT
until curl -s "http://127.0.0.1:$port/v2/" >/dev/null; do sleep 0.2; done
reg=127.0.0.1:$port
store=$work/store

# Prints the largest size of the store and output directory while "$@" runs.
peak_disk() {
  local peak=0 size
  "$@" &
  local pid=$!
  while kill -0 $pid 2>/dev/null; do
    # (du fails while the output directory does not exist: that must not end the script)
    size=$({ du -sb "$store" "$work/out" 2>/dev/null || true; } | awk '{s+=$1} END {printf "%.0f\n", s}')
    [ "$size" -gt "$peak" ] && peak=$size
    sleep 1
  done
  wait $pid
  echo "peak disk (store + output): $(python3 -c "print(f'{$peak/1e9:.2f}')") GB"
}

echo "== $image $arch: sources"
$bin --store "$store" -q fetch "$image" --arch "$arch"
rm -rf "$store"/{blobs,layers,realized,pyc-cache,.tmp}
echo "sources in the store: $(du -sb "$store" | awk '{printf "%.2f", $1/1e9}') GB"

for format in none oci; do
  rm -rf "$store"/{blobs,layers,realized,pyc-cache,.tmp} "$work/out"
  echo "== realize $image --arch $arch --format $format --push"
  peak_disk /usr/bin/time -f "%e s, peak RSS %M KB" \
    $bin --store "$store" -q realize "$image" --arch "$arch" --format "$format" --out "$work/out" \
    --push "$reg/carbon/$image-$format:$arch"
  echo "store + output after: $({ du -sb "$store" "$work/out" 2>/dev/null || true; } | awk '{s+=$1} END {printf "%.2f", s/1e9}') GB"
done
echo "pushed: $(du -sb "$work/registry" | awk '{printf "%.2f", $1/1e9}') GB in the registry"
