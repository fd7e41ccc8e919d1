#!/bin/sh
# Smoke test of `tools`: base, plus each operations tool runs.
set -eu
sh /smoke/base.sh
ansible --version | head -1
docker --version && podman --version && buildah --version && skopeo --version
kubectl version --client 2>/dev/null | head -1
git lfs version && rclone version | head -1 && restic version && age --version
yq --version && shellcheck --version | head -2 && http --version
openstack --version && python -c 'import kubernetes; print("kubernetes", kubernetes.__version__)'
echo 'ok: ops tools'
echo "smoke tools: passed"
