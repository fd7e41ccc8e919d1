#!/bin/sh
# Smoke test of `tools`: base, plus each operations tool runs.
set -eu
first() { out=$("$@"); printf '%s\n' "$out" | head -1; }
sh /smoke/base.sh
first ansible --version
docker --version
podman --version
buildah --version
skopeo --version
first kubectl version --client 2>/dev/null
git lfs version
first rclone version
restic version
age --version
yq --version
first shellcheck --version
http --version
openstack --version
python -c 'import kubernetes; print("kubernetes", kubernetes.__version__)'
echo 'ok: ops tools'
echo "smoke tools: passed"
