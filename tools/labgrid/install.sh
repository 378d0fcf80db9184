#!/usr/bin/env bash
# Install the pinned labgrid (client, coordinator, exporter) into venv/ next to this script.
# `otarig tools install labgrid` copies this folder's files into the user's cache folder
# (~/.cache/otarig/tools/labgrid) and runs it there.
#
# Why a venv of its own: labgrid replaces pyserial with its fork (pyserial-labgrid) and registers a
# pytest plugin; the rig's environment keeps plain pyserial and its own pytest plugins. otarig talks
# to labgrid only through `labgrid-client` as a subprocess (docs/lab.md).
#
# Idempotent: skips when the stamp matches requirements.txt and the venv's labgrid imports.
# Set OTARIG_LABGRID_FORCE=1 to reinstall. Python: $OTARIG_PYTHON's interpreter, else python3.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

stamp="venv/.otarig-install-stamp"
lock_hash="$(sha256sum requirements.txt | cut -d' ' -f1)"

labgrid_version() {  # (`labgrid-client version` needs a coordinator to answer)
  venv/bin/python -c 'from importlib.metadata import version; print(version("labgrid"))' 2>/dev/null
}

installed_ok() {
  [[ -f "$stamp" && "$(cat "$stamp")" == "$lock_hash" && -x venv/bin/labgrid-client ]] && labgrid_version >/dev/null
}

if [[ "${OTARIG_LABGRID_FORCE:-}" != "1" ]] && installed_ok; then
  echo "labgrid: installed in $here/venv (labgrid $(labgrid_version))"
  exit 0
fi

python="python3"
if [[ -n "${OTARIG_PYTHON:-}" ]]; then
  python="$("$OTARIG_PYTHON" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')"
fi
rm -rf venv
"$python" -m venv venv
venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
labgrid_version >/dev/null
echo "$lock_hash" >"$stamp"
echo "labgrid: installed in $here/venv (labgrid $(labgrid_version))"
