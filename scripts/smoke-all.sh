#!/usr/bin/env bash
# Builds and smoke-tests the Carbon suite: for each image and arch, realize it, load it in
# Docker (arm64 under qemu-user-static), run tests/smoke/<image>.sh inside with the
# services it checks started by carbon-entrypoint, install a package with the image's own
# apt (from the sources it carries; needs the mirror), then realize it again with --check
# (every layer rebuilt from the sources and compared). Prints one line per image and arch:
# result, build time, compressed and unpacked size, whether the rebuild was identical,
# and whether tests/desktop.rs logged into its desktop over SSH, VNC, noVNC and RDP and
# saw it (screenshots in target/screenshots/<image>-<arch>/).
#   IMAGES="base tools" ARCHS=amd64 scripts/smoke-all.sh
#   REBUILD=skip DESKTOP=skip scripts/smoke-all.sh   # the smoke tests alone
# compute is left out by default: its ~6 GB of CUDA wheels per arch need ~40 GB of free
# disk for one arch at a time (docs/images.md); IMAGES=compute runs it.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-tools --test >/dev/null
export DOCKER_HOST=$(scripts/engines-up)
cargo build --release --quiet
bin=$PWD/target/release/carbon-store
out=$PWD/target/smoke-out
logs=$PWD/target/smoke-logs
mkdir -p "$logs"
images=${IMAGES:-base base-macos tools compute-macos}
archs=${ARCHS:-amd64 arm64}
printf '%-14s %-6s %-6s %-4s %9s %11s %11s %-9s %s\n' image arch smoke apt build compressed unpacked rebuild desktop
failed=0
for image in $images; do
  for arch in $archs; do
    log=$logs/$image-$arch.log
    services=postgres,redis,ssh,vnc,novnc,rdp
    case $image in compute*) services=$services,jupyter ;; esac
    start=$(date +%s.%N)
    if ! "$bin" realize "$image" --arch "$arch" --out "$out" >"$log" 2>&1; then
      printf '%-14s %-6s %-6s  (realize failed: %s)\n' "$image" "$arch" FAIL "$log"; failed=1; continue
    fi
    build=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.0f", e - s }')
    compressed=$(ls -l "$out/$image-$arch.tar" | awk '{printf "%.2f GB", $5/1e9}')
    /usr/bin/docker load -i "$out/$image-$arch.tar" >>"$log" 2>&1
    # Loaded, the archive is only disk used twice (compute's is ~9 GB); --check compares
    # with the OCI layout, whose blobs are links into the store.
    rm -f "$out/$image-$arch.tar"
    unpacked=$(/usr/bin/docker image inspect "carbon/$image:latest" --format '{{.Size}}' | awk '{printf "%.2f GB", $1/1e9}')
    result=FAIL
    # Under qemu-user, Redis's arm64 kernel self-test cannot pass (docs/images.md).
    redis_args=""
    [ "$arch" = amd64 ] || redis_args="--ignore-warnings ARM64-COW-BUG"
    if /usr/bin/docker run --rm --network none --hostname localhost --platform "linux/$arch" \
        -e CARBON_SERVICES=$services -e CARBON_REDIS_ARGS="$redis_args" -v "$PWD/tests/smoke:/smoke:ro" "carbon/$image:latest" \
        sh "/smoke/$image.sh" >>"$log" 2>&1 && tail -1 "$log" | grep -qx "smoke $image: passed"; then
      result=pass
    else
      failed=1
    fi
    # apt inside the image, as a user extending it does: a package the image lacks
    # installs from the sources the image carries (docs/mirrors.md), signatures checked.
    apt=ok
    /usr/bin/docker run --rm --network host --platform "linux/$arch" -e CARBON_SERVICES=none \
        -e DEBIAN_FRONTEND=noninteractive "carbon/$image:latest" \
        sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends hello >/dev/null && hello' \
        >>"$log" 2>&1 || { apt=FAIL; failed=1; }
    rebuild=identical
    if [ "${REBUILD:-}" = skip ]; then
      rebuild=skipped
    else
      "$bin" realize "$image" --arch "$arch" --out "$out" --check >>"$log" 2>&1 || { rebuild=DIFFERENT; failed=1; }
    fi
    /usr/bin/docker image rm "carbon/$image:latest" "carbon/$image:latest-$arch" >/dev/null 2>&1
    # The login test realizes the image again from the same store (an unchanged realize
    # is a no-op) and loads it itself.
    desktop=seen
    if [ "${DESKTOP:-}" = skip ]; then
      desktop=skipped
    else
      CARBON_LIVE_STORE=${CARBON_STORE:-$PWD/store} CARBON_DESKTOP_IMAGE=$image CARBON_DESKTOP_ARCH=$arch \
        cargo test --quiet --test desktop desktop_over -- --include-ignored >>"$log" 2>&1 || { desktop=FAIL; failed=1; }
      mkdir -p "target/screenshots/$image-$arch" && mv target/screenshots/desktop-*.png "target/screenshots/$image-$arch/" 2>/dev/null
    fi
    printf '%-14s %-6s %-6s %-4s %8ss %11s %11s %-9s %s\n' "$image" "$arch" "$result" "$apt" "$build" "$compressed" "$unpacked" "$rebuild" "$desktop"
  done
done
exit $failed
