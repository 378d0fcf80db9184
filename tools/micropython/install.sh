#!/usr/bin/env bash
# Install what the bench companion's MicroPython tests need into tools/micropython:
#   node_modules/  MicroPython 1.27's WebAssembly port (npm @micropython/micropython-webassembly-pyscript,
#                  pinned by package-lock.json, `npm ci`), run by run.mjs
#   stubs/         MicroPython 1.27 RP2040 type stubs (stubs.txt, pinned with hashes), for mypy.ini;
#                  `pip install --target`, so they never shadow CPython's stdlib in an environment
#
# Idempotent: skips when the stamp matches package.json + package-lock.json + stubs.txt and the
# port answers its version. Set OTARIG_MICROPYTHON_FORCE=1 to reinstall. Node: $OTARIG_NODE, else the
# pinned Node 22 of ../particle-cli when installed, else `node` on PATH (any Node >= 18 runs the
# port). pip: $OTARIG_PYTHON, else the repo's .venv when there is one, else python3.
# `otarig tools install` copies this folder's files into the user's cache folder and runs it there.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"

pinned_mp="1.27.0"
stamp="node_modules/.otarig-install-stamp"
lock_hash="$(sha256sum package.json package-lock.json stubs.txt | sha256sum | cut -d' ' -f1)"

node_bin="${OTARIG_NODE:-}"
[[ -n "$node_bin" ]] || for cand in "$repo"/tools/particle-cli/node_modules/node-linux-*/bin/node; do
  [[ -x "$cand" ]] && node_bin="$cand" && break
done
if [[ -z "$node_bin" ]]; then
  node_bin="$(command -v node || true)"
fi
if [[ -z "$node_bin" ]]; then
  echo "install.sh: no Node.js: run \`otarig tools install particle-cli\` (pinned Node 22) or install node" >&2
  exit 1
fi

if [[ -n "${OTARIG_PYTHON:-}" ]]; then
  python="$OTARIG_PYTHON"
elif [[ -x "$repo/.venv/bin/python" ]]; then
  python="$repo/.venv/bin/python"
else
  python="python3"
fi

mp_version() {
  "$node_bin" run.mjs -c "import sys; print('%d.%d.%d' % sys.implementation.version[:3])" 2>/dev/null | tail -n1
}

installed_ok() {
  [[ -f "$stamp" && "$(cat "$stamp")" == "$lock_hash" && -f stubs/machine.pyi && -f stubs/stdlib/VERSIONS ]] \
    || return 1
  [[ "$(mp_version)" == "$pinned_mp" ]]
}

if [[ "${OTARIG_MICROPYTHON_FORCE:-}" != "1" ]] && installed_ok; then
  echo "MicroPython $pinned_mp (WebAssembly) and its rp2 stubs already installed; skipping"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "install.sh: npm not found; install Node.js/npm" >&2
  exit 1
fi

start=$(date +%s)
echo "installing MicroPython $pinned_mp (WebAssembly) with npm ci and the rp2 stubs with pip ..."
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
rm -rf stubs
"$python" -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
  --target stubs -r stubs.txt
echo "$lock_hash" > "$stamp"
if ! installed_ok; then
  echo "install.sh: MicroPython did not answer version $pinned_mp (node: $node_bin) or the stubs are missing" >&2
  exit 1
fi
echo "installed MicroPython $pinned_mp (node $("$node_bin" --version)) and the rp2 stubs in $(( $(date +%s) - start ))s"
