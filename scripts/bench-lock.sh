#!/usr/bin/env bash
# Benchmarks `carbon-store lock minimal` (both archs) cold and with a warm index cache,
# the no-op lock, and parsing one full Packages file. Prints medians (hyperfine) and
# peak memory (/usr/bin/time). Needs the network (the configured Debian mirror).
#
#   scripts/bench-lock.sh            # results on stdout; work files under bench-out/
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
cargo build --release --quiet
bin=$PWD/target/release/carbon-store
out=$PWD/bench-out/lock
rm -rf "$out" && mkdir -p "$out/locks"
# hyperfine, then its median from the JSON export (medians are what we quote).
bench() {
  local name=$1; shift
  hyperfine --export-json "$out/$name.json" "$@" >/dev/null
  python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print(f'{sys.argv[2]}: median {r[\"median\"]:.3f} s (min {r[\"min\"]:.3f}, max {r[\"max\"]:.3f}, {len(r[\"times\"])} runs)')" "$out/$name.json" "$name"
}
cmd="$bin --store $out/store --lockfiles $out/locks -q lock minimal"

echo "== lock minimal, both archs (cold: empty store, indexes downloaded; warm: InRelease"
echo "   re-fetched and verified, Packages read from the store; no-op: lock already up to date)"
bench "cold lock" --runs 5 --prepare "rm -rf '$out/store' '$out/locks/minimal.lock'" "$cmd"
bench "warm lock" --warmup 1 --runs 10 --prepare "rm -f '$out/locks/minimal.lock'" "$cmd"
bench "no-op lock" --warmup 1 --runs 10 "$cmd"

echo "== peak memory"
rm -rf "$out/store" "$out/locks/minimal.lock"
/usr/bin/time -f "cold lock: %e s, peak RSS %M KB" "$bin" --store "$out/store" --lockfiles "$out/locks" -q lock minimal
rm -f "$out/locks/minimal.lock"
/usr/bin/time -f "warm lock: %e s, peak RSS %M KB" "$bin" --store "$out/store" --lockfiles "$out/locks" -q lock minimal

echo "== parse one full Packages file"
packages=$(ls "$out"/store/*-Packages_trixie_main_amd64 | head -1)
cargo bench --quiet --bench parse_packages -- "$packages" 7 2>/dev/null | grep '^parse'
