#!/bin/sh
# JupyterLab's extensions as a user meets them (run by the compute images' smoke tests and
# by the python-data end-to-end test): every lab extension the recipes promise is listed
# `enabled OK` by `jupyter labextension list` (OK: built for this JupyterLab), none is
# disabled or incompatible, each server extension loads, each Python package imports, a
# few do their job offline (PyGWalker renders a frame, Jupytext converts, Black formats),
# and a JupyterLab server of the script's own answers the extensions' APIs with the
# image's settings. EXTRA_LAB_EXTENSIONS names more (compute: NVIDIA's dashboards).
set -eu
# (Its colours are escape codes even into a pipe; they are stripped.)
lab=$(jupyter labextension list 2>&1 | sed 's/\x1b\[[0-9;]*m//g')
missing=""
for ext in \
    @jupyter-widgets/jupyterlab-manager @jupyterlab/git nbdime-jupyterlab \
    @jupyter-lsp/jupyterlab-lsp jupyterlab-plotly jupyterlab_pygments \
    @jupyter-server/resource-usage jupyterlab-execute-time jupyterlab_code_formatter \
    spreadsheet-editor @axlair/jupyterlab_vim @voila-dashboards/jupyterlab-preview \
    anywidget ipylab jupyterlab-jupytext \
    jupyter-matplotlib @hadim/jupyter-archive @jupyterlab-contrib/spellchecker \
    jupyterlab-skip-traceback @jlab-enhanced/favorites @jupyterlab/github jupyterlab-h5web \
    jupyterlab-quickopen ${EXTRA_LAB_EXTENSIONS:-}; do
    printf '%s\n' "$lab" | grep -Eq "^[[:space:]]+$ext v[^ ]+ enabled +OK" || missing="$missing $ext"
done
[ -z "$missing" ] || { printf '%s\n' "$lab"; echo "FAIL: lab extensions not enabled OK:$missing"; exit 1; }
if printf '%s\n' "$lab" | grep -E "^[[:space:]]+[^ ]+ v[^ ]+ " | grep -Ev "enabled +OK"; then
    echo "FAIL: a lab extension above is disabled or not built for this JupyterLab"; exit 1
fi
echo "ok: $(printf '%s\n' "$lab" | grep -Ec 'enabled +OK') lab extensions enabled OK"
server=$(jupyter server extension list 2>&1 | sed 's/\x1b\[[0-9;]*m//g')
for ext in jupyterlab_git jupyter_lsp jupyter_resource_usage jupyterlab_code_formatter voila.server_extension \
    jupyter_archive jupyterlab_h5web jupyterlab_quickopen jupyterlab_jupytext; do
    printf '%s\n' "$server" | grep -Eq "^[[:space:]]+$ext enabled\$" \
        && printf '%s\n' "$server" | grep -Eq "^[[:space:]]+$ext( [^ ]*)? +OK\$" \
        || { printf '%s\n' "$server"; echo "FAIL: server extension $ext not enabled and valid"; exit 1; }
done
if printf '%s\n' "$server" | grep -Eq "^[[:space:]]+X "; then
    printf '%s\n' "$server"; echo "FAIL: a server extension does not load"; exit 1
fi
echo "ok: server extensions load"
# jupyterlab_execute_time is not imported: its wheel's module reads its version from a
# package.json that the wheel installs under share/jupyter instead, so it fails to import
# wherever it is installed; the lab extension, all it ships, is checked above.
python - <<'PY'
import importlib
modules = """ipywidgets jupyterlab_git jupyter_lsp pylsp pygwalker jupyter_resource_usage
jupyterlab_code_formatter black isort jupyterlab_spreadsheet_editor
jupyterlab_vim voila jupytext ipympl ipylab
jupyter_archive jupyterlab_spellchecker jupyterlab_skip_traceback jupyterlab_favorites
jupyterlab_github jupyterlab_h5web jupyterlab_quickopen anywidget""".split()
for m in modules:
    importlib.import_module(m)
print("ok:", len(modules), "extension packages import")
import pandas as pd, pygwalker, jupytext, black
from pygwalker.services.global_var import GlobalVarManager
# Offline by the image's config: otherwise, without a network, this process would wait
# minutes at exit retrying its usage report.
assert GlobalVarManager.privacy == "offline", GlobalVarManager.privacy
html = pygwalker.to_html(pd.DataFrame({"city": ["a", "b"], "n": [1, 2]}))
assert "<" in html and len(html) > 10000, html[:200]
print("pygwalker", pygwalker.__version__, "renders", len(html) // 1000, "kB")
nb = jupytext.reads("# %%\nx = 1\n", fmt="py:percent")
print("jupytext cells", len(nb.cells))
print("black", black.format_str("x=( 1, )", mode=black.Mode()).strip())
PY

# The carbon user (in the images that have it) gets the same PyGWalker setting from its home.
if id carbon >/dev/null 2>&1; then
    su carbon -s /bin/sh -c 'cd /tmp && HOME=/home/carbon /opt/carbon/python/bin/python -c "
from pygwalker.services.global_var import GlobalVarManager as G
assert G.privacy == \"offline\", G.privacy
print(\"ok: PyGWalker offline for carbon\")"'
fi
# A server of its own (port 8890, beside the entrypoint's 8888), asked as the browser asks:
# the settings the page gets (vim key bindings off by the image's overrides), and the
# server extensions' own endpoints.
as_root=""
[ "$(id -u)" != 0 ] || as_root=--allow-root
jupyter lab --no-browser --ip=127.0.0.1 --port=8890 --IdentityProvider.token=carbon-check \
    --ServerApp.root_dir=/tmp $as_root >/tmp/jupyter-check.log 2>&1 &
server_pid=$!
SERVER_PID=$server_pid python - <<'PY' || { cat /tmp/jupyter-check.log; kill "$server_pid" 2>/dev/null; exit 1; }
import json, os, time, urllib.request
def get(path):
    url = "http://127.0.0.1:8890" + path + ("&" if "?" in path else "?") + "token=carbon-check"
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)
for _ in range(120):
    try:
        get("/api/status")
        break
    except OSError:
        os.kill(int(os.environ["SERVER_PID"]), 0)  # raises once the server has exited
        time.sleep(1)
vim = get("/lab/api/settings/@axlair/jupyterlab_vim:plugin")
# The page composes the schema's defaults (where overrides.json lands) with user settings.
enabled = vim["settings"].get("enabled", vim["schema"]["properties"]["enabled"]["default"])
assert enabled is False, (vim["settings"], vim["schema"]["properties"]["enabled"])
print("ok: vim key bindings off by default")
assert "rss" in get("/api/metrics/v1"), "resource usage"
formatters = get("/jupyterlab_code_formatter/formatters")["formatters"]
assert formatters["black"]["enabled"] and formatters["isort"]["enabled"], formatters
print("ok: resource usage and the code formatter (black, isort) answer")
PY
kill "$server_pid"
echo "ok: JupyterLab extensions"
