#!/usr/bin/env bash
# Benchmarks what the byte-code of Debian's Python modules buys: an import-heavy start of
# the image's python3 as `carbon` in `base` (amd64), with the image's byte-code and, in the
# same container, with it out of reach (`-X pycache_prefix` pointing where nothing is and
# nothing may be written, so every start compiles in memory, as without the layer).
# Rounds alternate the two; prints the median of each and their ratio.
#
#   ROUNDS=30 scripts/bench-python-start.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-tools --test >/dev/null
export DOCKER_HOST=$(scripts/engines-up)
cargo build --release --quiet
out=$PWD/bench-out/python-start
mkdir -p "$out"
target/release/carbon-store -q realize base --arch amd64 --format docker --out "$out"
/usr/bin/docker load -i "$out/base-amd64.tar" >/dev/null
rm -f "$out/base-amd64.tar"
/usr/bin/docker run --rm --network none --user carbon --entrypoint sh \
  -e ROUNDS="${ROUNDS:-20}" carbon/base:latest -c '
mods="asyncio, json, email.mime.text, http.client, urllib.request, xml.etree.ElementTree, argparse, logging, decimal, typing, dataclasses, sqlite3, csv, zipfile, tarfile, subprocess"
ms() { s=$(date +%s%N); python3 "$@" -c "import $mods"; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
i=0
while [ "$i" -lt "$ROUNDS" ]; do
  ms >> /tmp/with
  ms -X pycache_prefix=/no-such-dir >> /tmp/without
  i=$((i + 1))
done
median() { sort -n "$1" | awk "{ v[NR] = \$1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }"; }
with=$(median /tmp/with); without=$(median /tmp/without)
echo "python3 start importing: $mods"
echo "with the image byte-code:    median $with ms ($ROUNDS runs)"
echo "without (compiled each run): median $without ms ($ROUNDS runs)"
awk -v a="$without" -v b="$with" "BEGIN { printf \"ratio: %.1fx\n\", a / b }"
'
/usr/bin/docker image rm carbon/base:latest >/dev/null
