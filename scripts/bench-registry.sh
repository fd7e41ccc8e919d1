#!/usr/bin/env bash
# Registry figures for docs/benchmarks.md, in one run on this machine: pushing an image
# (default base, both archs) to a registry started here (Debian's docker-registry on
# 127.0.0.1, plain HTTP, storage inside the clone) against `skopeo copy --all` of the same
# layout; a second push; and realizing the image in an empty store from a registry cache
# (every mirror unreachable) against from the mirrors.
#   scripts/bench-registry.sh            # IMAGE=base by default
set -euo pipefail
cd "$(dirname "$0")/.."
image=${IMAGE:-base}
need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; fi
cargo build --release --quiet
bin=$PWD/target/release/carbon-store
work=$PWD/bench-out/registry
live=${CARBON_LIVE_STORE:-$PWD/target/live-store}
rm -rf "$work" && mkdir -p "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
registry_pid=$!
trap 'kill $registry_pid 2>/dev/null' EXIT
until curl -s "http://127.0.0.1:$port/v2/" >/dev/null; do sleep 0.2; done
reg=127.0.0.1:$port

echo "== $image: the layout to push (realize, both archs)"
$bin --store "$live" -q realize "$image" --format oci --out "$work/out" >/dev/null
echo "layout: $(du -sb "$work/out/$image" | cut -f1) bytes, $(ls "$work/out/$image/blobs/sha256" | wc -l) blobs"

echo "== push (carbon-store push vs skopeo copy --all, each to a new repository)"
/usr/bin/time -f "carbon-store push, first: %e s, peak RSS %M KB" \
  $bin --store "$work/push-store" push "$work/out/$image" "$reg/carbon/$image:v1"
/usr/bin/time -f "skopeo copy --all, first: %e s, peak RSS %M KB" \
  skopeo copy -q --all --dest-tls-verify=false "oci:$work/out/$image:latest" "docker://$reg/skopeo/$image:v1"
/usr/bin/time -f "carbon-store push, again (nothing changed): %e s, peak RSS %M KB" \
  $bin --store "$work/push-store" push "$work/out/$image" "$reg/carbon/$image:v1"
/usr/bin/time -f "skopeo copy --all, again: %e s, peak RSS %M KB" \
  skopeo copy -q --all --dest-tls-verify=false "oci:$work/out/$image:latest" "docker://$reg/skopeo/$image:v1"
echo "index digest: local $(python3 -c "import json,sys; print([m['digest'] for m in json.load(open(sys.argv[1]))['manifests'] if m['annotations']['org.opencontainers.image.ref.name']=='latest'][0])" "$work/out/$image/index.json"), registry sha256:$(skopeo inspect --raw --tls-verify=false "docker://$reg/carbon/$image:v1" | sha256sum | cut -d' ' -f1)"

echo "== realize $image (both archs) in an empty store: from the registry cache vs from the mirrors"
/usr/bin/time -f "cache push: %e s" $bin --store "$live" -q cache push "$image" --to "$reg/ci/cache" >/dev/null
/usr/bin/time -f "realize from the cache (mirrors unreachable): %e s, peak RSS %M KB" \
  env CARBON_MIRROR_DEBIAN=http://127.0.0.1:9/debian CARBON_MIRROR_DEBIAN_SECURITY=http://127.0.0.1:9/debian-security CARBON_MIRROR_PYPI=http://127.0.0.1:9/pypi \
  $bin --store "$work/from-cache" -q realize "$image" --cache "$reg/ci/cache" --format oci --out "$work/out-cache"
rm -rf "$work/from-cache"
/usr/bin/time -f "realize from the mirrors: %e s, peak RSS %M KB" \
  $bin --store "$work/from-mirror" -q realize "$image" --format oci --out "$work/out-mirror"
rm -rf "$work/from-mirror"
cmp "$work/out-cache/$image/index.json" "$work/out-mirror/$image/index.json" && echo "both give the same index.json"
