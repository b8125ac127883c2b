#!/usr/bin/env bash
# Install the js-ipfs test rig (ipfs@0.66.1 with pinned overrides) into a cache
# directory. Idempotent: returns at once when the same package.json is installed.
# Usage: bash tools/ipfs-rig/install.sh [CACHE_DIR]   (default: <repo>/.cache/ipfs-rig)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${1:-${LEARNAE_IPFS_RIG:-$repo/.cache/ipfs-rig}}"
mkdir -p "$cache"
stamp="$cache/.installed"
cp "$here/node.mjs" "$cache/node.mjs"  # the launcher is ours: always the current one
want="$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -f "$cache/node_modules/ipfs/package.json" ]]; then
  echo "ipfs-rig: already installed in $cache" >&2
  exit 0
fi
# The lock file pins every transitive version, so each machine gets the same tree.
cp "$here/package.json" "$here/package-lock.json" "$cache/"
cd "$cache"
echo "ipfs-rig: installing ipfs@0.66.1 into $cache (takes a few minutes)" >&2
npm install --no-audit --no-fund --loglevel=error >&2
node -e 'import("ipfs").then(() => console.error("ipfs-rig: ipfs module loads"))'
echo "$want" > "$stamp"
