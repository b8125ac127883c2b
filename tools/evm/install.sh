#!/usr/bin/env bash
# Install the EVM rig (npm solc@0.8.37 and @foundry-rs/anvil@1.7.1, every transitive
# version pinned by package-lock.json) into a cache directory. Idempotent: returns at
# once when the same package.json and lock are installed.
# Usage: bash tools/evm/install.sh [CACHE_DIR]   (default: <repo>/.cache/evm)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${1:-${LEARNAE_EVM_RIG:-$repo/.cache/evm}}"
mkdir -p "$cache"
stamp="$cache/.installed"
want="$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -f "$cache/node_modules/solc/package.json" ]]; then
  echo "evm-rig: already installed in $cache" >&2
  exit 0
fi
cp "$here/package.json" "$here/package-lock.json" "$cache/"
cd "$cache"
echo "evm-rig: installing solc@0.8.37 and anvil@1.7.1 into $cache" >&2
npm ci --no-audit --no-fund --loglevel=error >&2
anvil="$(ls "$cache"/node_modules/@foundry-rs/anvil-linux-*/bin/anvil | head -n1)"
"$anvil" --version >&2
echo "$want" > "$stamp"
