#!/usr/bin/env bash
# Benchmarks `carbon-store realize minimal` (amd64) against `mmdebstrap --variant=minbase`
# of the same suite, in one run on this machine: cold (empty store, no lock: indexes and
# packages downloaded, resolved, built), warm (sources in the store, no cached layers) and
# no-op (nothing changed). Prints hyperfine medians and peak memory. Needs the network.
#
#   scripts/bench-realize.sh        # work files under bench-out/realize/
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; fi
cargo build --release --quiet
bin=$PWD/target/release/carbon-store
work=$PWD/bench-out/realize
rm -rf "$work" && mkdir -p "$work/locks"
bench() {
  local name=$1; shift
  hyperfine --export-json "$work/$name.json" "$@" >/dev/null
  python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print(f'{sys.argv[2]}: median {r[\"median\"]:.3f} s (min {r[\"min\"]:.3f}, max {r[\"max\"]:.3f}, {len(r[\"times\"])} runs)')" "$work/$name.json" "$name"
}
carbon="$bin --store $work/store --lockfiles $work/locks -q realize minimal --arch amd64 --out $work/oci-out"
cold_prep="rm -rf '$work/store' '$work/oci-out' '$work/locks/minimal.lock'"
warm_prep="rm -rf '$work/store/layers' '$work/store/blobs' '$work/store/realized' '$work/oci-out'"

echo "== realize minimal, amd64 vs mmdebstrap --variant=minbase trixie (same machine, same run)"
bench "mmdebstrap cold" --runs 3 --prepare "rm -f '$work/mmdebstrap.tar'" "mmdebstrap --quiet --variant=minbase trixie '$work/mmdebstrap.tar'"
bench "carbon-store cold" --runs 3 --prepare "$cold_prep" "$carbon"
bench "carbon-store warm" --runs 5 --prepare "$warm_prep" "$carbon"
bench "carbon-store no-op" --warmup 1 --runs 10 "$carbon"
echo "== peak memory"
eval "$cold_prep"
/usr/bin/time -f "carbon-store cold: %e s, peak RSS %M KB" $carbon
eval "$warm_prep"
/usr/bin/time -f "carbon-store warm: %e s, peak RSS %M KB" $carbon
/usr/bin/time -f "carbon-store no-op: %e s, peak RSS %M KB" $carbon
echo "== sizes"
echo "carbon-store minimal amd64 docker archive: $(du -h "$work/oci-out/minimal-amd64.tar" | cut -f1), packages: $(grep -c 'name = ' "$work/locks/minimal.lock") (both archs)"
echo "mmdebstrap minbase tarball: $(du -h "$work/mmdebstrap.tar" | cut -f1)"
