#!/usr/bin/env bash
# The smoke run (scripts/smoke.mjs) on the supported Node versions (issue 22 point 6), for .ci/run after the suite.
# Usage: scripts/node-smoke.sh [VERSION ...]   (default: this machine's Node, then the versions below; run from a
# checkout with dist/ built and node_modules installed)
#
# This machine's Node runs the smoke on the checkout as it is. Every other Node comes from the npm registry the way
# the conformance run gets Node 22 (`npm exec --package=node@V`): the `node` package ships the official build,
# headers (include/node) included. better-sqlite3 is a native addon built for one Node ABI (NODE_MODULE_VERSION), so
# it is compiled from its own sources once per ABI against that Node's headers (npm's bundled node-gyp with an
# explicit --nodedir: this machine's npm config says nodedir=/usr, Node 20's headers; g++, make, python3) and cached
# in ~/.cache/itguard/; the smoke then runs in a shadow tree whose node_modules links every package of the checkout
# but better-sqlite3. The smoke's build is unoptimized (-O0): the SQLite amalgamation takes minutes at node-gyp's
# -O3 on a 2-core machine and seconds at -O0, and the optimization level has no part in what the smoke checks (which
# Node the addon is built for and whether it runs there).
#
# Fails soft (a warning, exit 0) only when the registry cannot be reached. Any other failure (download, build,
# smoke) fails the run, on every Node version. On Node >= 24 the server uses Node's built-in node:sqlite
# (src/store/sqlite/driver-node.ts), not better-sqlite3: better-sqlite3 12 aborts the process there (`Assertion
# failed: (env) != nullptr` in node::RemoveEnvironmentCleanupHook, from the node::ObjectWrap destructor of a
# Statement freed by a garbage collection: Node 24's ObjectWrap registers an environment cleanup hook), and
# better-sqlite3 13, which runs on Node 24, crashes Node 20. The addon is still built for Node 24 (ABI 137) so
# that `ITGUARD_SQLITE_DRIVER=better-sqlite3` can be tried there by hand; the smoke does not load it.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
VERSIONS=("$@")
SELF=""
if [ ${#VERSIONS[@]} -eq 0 ]; then
  VERSIONS=(22.23.3 24.21.0)
  SELF="$(node -p 'process.versions.node')"
fi
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/itguard"
mkdir -p "$CACHE"
NODE_GYP="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")/node_modules/node-gyp/bin/node-gyp.js"
BSQ_VERSION="$(node -p 'require("./node_modules/better-sqlite3/package.json").version')"
T_START=$(date +%s)
status=0
summary=()

# run_smoke LABEL NODE_BIN SMOKE_SCRIPT: runs the smoke, prints its output, records the verdict.
run_smoke() {
  local label="$1" bin="$2" script="$3" t0="$4" log
  log="$(mktemp)"
  if "$bin" "$script" >"$log" 2>&1; then
    cat "$log"
    summary+=("Node $label: passed ($(($(date +%s) - t0)) s)")
  else
    cat "$log"
    summary+=("Node $label: FAILED ($(($(date +%s) - t0)) s)")
    status=1
  fi
  rm -f "$log"
}

if [ -n "$SELF" ]; then
  echo "node smoke: Node $SELF (this machine's, the checkout's node_modules)"
  run_smoke "$SELF" "$(command -v node)" "$ROOT/scripts/smoke.mjs" "$(date +%s)"
fi

if ! timeout 20 npm ping >/dev/null 2>&1; then
  echo "node smoke: SKIPPED — the npm registry ($(npm config get registry)) cannot be reached; Node ${VERSIONS[*]} not tested"
  [ ${#summary[@]} -gt 0 ] && printf 'node smoke: %s\n' "${summary[@]}"
  exit $status
fi

for v in "${VERSIONS[@]}"; do
  t0=$(date +%s)
  echo "node smoke: Node $v"
  # The Node binary and its headers, from the registry (cached by npm after the first run).
  node_bin="$(timeout 300 npm exec --yes --package="node@$v" -- node -p 'process.execPath' 2>/dev/null | tail -n 1)"
  if [ -z "$node_bin" ] || [ ! -x "$node_bin" ]; then
    echo "node smoke: node@$v could not be fetched from the registry"
    summary+=("Node $v: FAILED (node@$v could not be fetched)")
    status=1
    continue
  fi
  node_dir="$(dirname "$(dirname "$(readlink -f "$node_bin")")")"
  headers="$(find "$node_dir/.." "$node_dir" -maxdepth 5 -path '*/include/node/node_api.h' 2>/dev/null | head -n 1)"
  abi="$("$node_bin" -p 'process.versions.modules')"
  addon="$CACHE/better-sqlite3-$BSQ_VERSION-abi$abi-O0.node"
  if [ ! -f "$addon" ]; then
    if [ -z "$headers" ]; then
      echo "node smoke: node@$v has no headers next to $node_bin; cannot build better-sqlite3"
      summary+=("Node $v: FAILED (no headers)")
      status=1
      continue
    fi
    nodedir="$(dirname "$(dirname "$(dirname "$headers")")")"
    src="$(mktemp -d)"
    cp -r "$ROOT/node_modules/better-sqlite3/." "$src/" && rm -rf "$src/build"
    echo "node smoke: building better-sqlite3 $BSQ_VERSION for Node $v (ABI $abi, headers $nodedir/include/node; once, then cached)"
    tb=$(date +%s)
    if ! (cd "$src" && PATH="$(dirname "$node_bin"):$PATH" CFLAGS=-O0 CXXFLAGS=-O0 timeout 900 "$node_bin" "$NODE_GYP" \
      rebuild --release --nodedir="$nodedir" -j 2 >"$src/build.log" 2>&1); then
      tail -n 20 "$src/build.log"
      echo "node smoke: building better-sqlite3 for Node $v failed"
      summary+=("Node $v: FAILED (better-sqlite3 build)")
      status=1
      rm -rf "$src"
      continue
    fi
    echo "node smoke: built in $(($(date +%s) - tb)) s"
    cp "$src/build/Release/better_sqlite3.node" "$addon.tmp" && mv "$addon.tmp" "$addon"
    rm -rf "$src"
  fi

  # The shadow tree: the built code and the checkout's packages, with better-sqlite3 for this ABI.
  tree="$(mktemp -d)"
  cp -r "$ROOT/dist" "$ROOT/package.json" "$tree/"
  mkdir -p "$tree/scripts" "$tree/node_modules/better-sqlite3/build/Release"
  cp "$ROOT/scripts/smoke.mjs" "$tree/scripts/"
  ln -s "$ROOT/kb" "$tree/kb"
  for m in "$ROOT"/node_modules/* "$ROOT"/node_modules/.bin; do
    [ "$(basename "$m")" = better-sqlite3 ] || ln -s "$(readlink -f "$m")" "$tree/node_modules/$(basename "$m")"
  done
  cp -r "$ROOT/node_modules/better-sqlite3/lib" "$ROOT/node_modules/better-sqlite3/package.json" \
    "$tree/node_modules/better-sqlite3/"
  cp "$addon" "$tree/node_modules/better-sqlite3/build/Release/better_sqlite3.node"

  run_smoke "$v" "$node_bin" "$tree/scripts/smoke.mjs" "$t0"
  rm -rf "$tree"
done
printf 'node smoke: %s\n' "${summary[@]}"
echo "node smoke: $(($(date +%s) - T_START)) s in all"
exit $status
