#!/usr/bin/env bash
# The smoke run (scripts/smoke.mjs) on other Node versions (issue 22 point 6), for .ci/run after the suite.
# Usage: scripts/node-smoke.sh [VERSION ...]   (default: the versions below; run from a checkout with dist/ built)
#
# Each Node binary comes from the npm registry the way the conformance run gets Node 22 (`npm exec
# --package=node@V`): the `node` package ships the official build, headers included. better-sqlite3 is a native
# addon built for one Node ABI, so it is compiled once per ABI from its own sources against those headers (npm's
# bundled node-gyp; g++, make, python3) and cached in ~/.cache/itguard/; the smoke then runs in a shadow tree whose
# node_modules links every package of the checkout but better-sqlite3.
#
# Fails soft (a warning, exit 0) only when the registry cannot be reached; any other failure (download, build,
# smoke) fails the run, with one known exception: better-sqlite3 12 and older aborts the process on Node 24
# (`Assertion failed: (env) != nullptr` in node::RemoveEnvironmentCleanupHook from Statement::~Statement during a
# garbage collection: Node 24's node_object_wrap.h registers a cleanup hook that better-sqlite3 <= 12's ObjectWrap
# removes without an environment; better-sqlite3 13 moved to Node-API). While package.json pins better-sqlite3 12,
# the Node 24 smoke still runs and its result is printed, but a failure there is reported as the known
# incompatibility instead of failing the run; once better-sqlite3 is 13 or later it counts like any other.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
VERSIONS=("$@")
[ ${#VERSIONS[@]} -eq 0 ] && VERSIONS=(22.23.3 24.21.0)
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/itguard"
mkdir -p "$CACHE"
NODE_GYP="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")/node_modules/node-gyp/bin/node-gyp.js"
BSQ_VERSION="$(node -p 'require("./node_modules/better-sqlite3/package.json").version')"

if ! timeout 20 npm ping >/dev/null 2>&1; then
  echo "node smoke: SKIPPED — the npm registry ($(npm config get registry)) cannot be reached; Node ${VERSIONS[*]} not tested"
  exit 0
fi

status=0
for v in "${VERSIONS[@]}"; do
  t0=$(date +%s)
  # The Node binary and its headers, from the registry (cached by npm after the first run).
  node_bin="$(timeout 300 npm exec --yes --package="node@$v" -- node -p 'process.execPath' 2>/dev/null | tail -n 1)"
  if [ -z "$node_bin" ] || [ ! -x "$node_bin" ]; then
    echo "node smoke: node@$v could not be fetched from the registry"
    status=1
    continue
  fi
  node_dir="$(dirname "$(dirname "$(readlink -f "$node_bin")")")"
  headers="$(find "$node_dir/.." "$node_dir" -maxdepth 5 -path '*/include/node/node_api.h' 2>/dev/null | head -n 1)"
  abi="$("$node_bin" -p 'process.versions.modules')"
  addon="$CACHE/better-sqlite3-$BSQ_VERSION-abi$abi.node"
  if [ ! -f "$addon" ]; then
    if [ -z "$headers" ]; then
      echo "node smoke: node@$v has no headers next to $node_bin; cannot build better-sqlite3"
      status=1
      continue
    fi
    nodedir="$(dirname "$(dirname "$(dirname "$headers")")")"
    src="$(mktemp -d)"
    cp -r "$ROOT/node_modules/better-sqlite3/." "$src/" && rm -rf "$src/build"
    echo "node smoke: building better-sqlite3 $BSQ_VERSION for Node $v (ABI $abi; once, then cached)"
    if ! (cd "$src" && PATH="$(dirname "$node_bin"):$PATH" "$node_bin" "$NODE_GYP" rebuild --release \
      --nodedir="$nodedir" -j 2 >"$src/build.log" 2>&1); then
      tail -n 20 "$src/build.log"
      echo "node smoke: building better-sqlite3 for Node $v failed"
      status=1
      rm -rf "$src"
      continue
    fi
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

  if "$node_bin" "$tree/scripts/smoke.mjs"; then
    echo "node smoke: Node $v passed ($(($(date +%s) - t0)) s)"
  elif [ "${v%%.*}" -ge 24 ] && [ "${BSQ_VERSION%%.*}" -lt 13 ]; then
    echo "node smoke: Node $v FAILED — the known better-sqlite3 $BSQ_VERSION abort on Node 24 (needs better-sqlite3 13+); not counted"
  else
    echo "node smoke: Node $v FAILED"
    status=1
  fi
  rm -rf "$tree"
done
exit $status
