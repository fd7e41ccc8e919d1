#!/usr/bin/env bash
# Benchmarks `carbon-store realize minimal` (amd64) against `mmdebstrap --variant=minbase`
# of the same suite, in one run on this machine: cold (empty store, no lock: indexes and
# packages downloaded, resolved, built), warm (sources in the store, no cached layers) and
# no-op (nothing changed). Prints hyperfine medians and peak memory. Needs the network.
#
#   scripts/bench-realize.sh          # work files under bench-out/realize/
#   scripts/bench-realize.sh memory   # peak memory of the suite's images (see below)
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
[ "${1:-}" = memory ] || command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; fi
cargo build --release --quiet
bin=$PWD/target/release/carbon-store
work=$PWD/bench-out/realize
rm -rf "$work" && mkdir -p "$work/locks"
if [ "${1:-}" != memory ]; then
bench() {
  local name=$1; shift
  hyperfine --export-json "$work/$name.json" "$@" >/dev/null
  python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print(f'{sys.argv[2]}: median {r[\"median\"]:.3f} s (min {r[\"min\"]:.3f}, max {r[\"max\"]:.3f}, {len(r[\"times\"])} runs)')" "$work/$name.json" "$name"
}
carbon="$bin --store $work/store --lockfiles $work/locks -q realize minimal --arch amd64 --out $work/oci-out"
cold_prep="rm -rf '$work/store' '$work/oci-out' '$work/locks/minimal.lock'"
warm_prep="rm -rf '$work/store/layers' '$work/store/blobs' '$work/store/realized' '$work/oci-out'"

echo "== realize minimal, amd64 vs mmdebstrap --variant=minbase trixie (same machine, same run)"
# mmdebstrap's time varies most (apt and dpkg waiting on the disk): five runs each.
bench "mmdebstrap cold" --runs 5 --prepare "rm -f '$work/mmdebstrap.tar'" "mmdebstrap --quiet --variant=minbase trixie '$work/mmdebstrap.tar'"
bench "carbon-store cold" --runs 5 --prepare "$cold_prep" "$carbon"
# The same output form as ours, a gzip-compressed archive (mmdebstrap pipes its tar to gzip).
bench "mmdebstrap cold, .tar.gz" --runs 3 --prepare "rm -f '$work/mmdebstrap.tar.gz'" "mmdebstrap --quiet --variant=minbase trixie '$work/mmdebstrap.tar.gz'"
python3 -c "import json,sys; m=lambda n: json.load(open(f'{sys.argv[1]}/{n}.json'))['results'][0]['median']; c=m('carbon-store cold'); print(f'cold: {m(\"mmdebstrap cold\")/c:.1f}x faster than mmdebstrap to .tar, {m(\"mmdebstrap cold, .tar.gz\")/c:.1f}x than to .tar.gz')" "$work"
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
echo "mmdebstrap minbase tarball: $(du -h "$work/mmdebstrap.tar" | cut -f1), gzip: $(du -h "$work/mmdebstrap.tar.gz" | cut -f1)"
fi

# Bounded memory (docs/benchmarks.md): peak RSS of realize and realize --check for the
# suite's images, against the live store (downloads what is missing); and base amd64 built
# from a warm store with no cached layers against the compressor alone (pigz, independent
# 1 MiB blocks, level 5 as ours, same thread count) over the same tar bytes.
#   IMAGES="base compute" ARCHS="amd64 arm64" scripts/bench-realize.sh memory
if [ "${1:-}" = memory ]; then
  command -v pigz >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pigz >/dev/null; }
  live=${CARBON_LIVE_STORE:-$PWD/target/live-store}
  # A store holding the live store's sources (hard links), never its layers: every realize
  # below builds every layer.
  store=$work/store
  mkdir -p "$live" && rm -rf "$store" && cp -al "$live" "$store"
  no_layers() { rm -rf "$store"/{layers,blobs,realized}; }
  out=$work/memory-out
  threads=$(nproc)
  echo "== peak RSS of realize (no cached layers) and realize --check ($threads threads)"
  for image in ${IMAGES:-minimal base tools compute base-macos compute-macos}; do
    $bin --store "$store" -q fetch "$image" >/dev/null
    for arch in ${ARCHS:-amd64 arm64}; do
      rm -rf "$out"
      no_layers
      /usr/bin/time -f "$image $arch realize: %e s, peak RSS %M KB" $bin --store "$store" -q --offline realize "$image" --arch "$arch" --out "$out"
      /usr/bin/time -f "$image $arch realize --check: %e s, peak RSS %M KB" $bin --store "$store" -q --offline realize "$image" --arch "$arch" --out "$out" --check
    done
  done
  echo "== realize base amd64, warm store, no cached layers, vs the compressor alone"
  rm -rf "$out"
  no_layers
  /usr/bin/time -f "realize base amd64 (no cached layers): %e s, peak RSS %M KB" \
    $bin --store "$store" -q --offline realize base --arch amd64 --out "$out"
  # The same tar bytes, uncompressed, then compressed alone.
  tars=$work/tars && rm -rf "$tars" && mkdir -p "$tars"
  python3 - "$out/base" "$tars" <<'PY'
import json, os, sys, gzip, shutil
layout, dst = sys.argv[1], sys.argv[2]
index = json.load(open(os.path.join(layout, "index.json")))
blob = lambda d: os.path.join(layout, "blobs/sha256", d.split(":")[1])
for m in index["manifests"]:
    # The SBOM and provenance manifests beside the image carry no name.
    if m.get("annotations", {}).get("org.opencontainers.image.ref.name", "").endswith("-amd64"):
        manifest = json.load(open(blob(m["digest"])))
for i, layer in enumerate(manifest["layers"]):
    with gzip.open(blob(layer["digest"])) as src, open(os.path.join(dst, f"{i:03}.tar"), "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
PY
  echo "tar bytes: $(du -cb "$tars"/*.tar | tail -1 | cut -f1)"
  /usr/bin/time -f "pigz -5 -i -b 1024 -p $threads over the same tars, one after another: %e s, peak RSS %M KB" \
    sh -c "for t in '$tars'/*.tar; do pigz -5 -i -b 1024 -p $threads -c \"\$t\" >/dev/null; done"
  rm -rf "$tars"
fi
