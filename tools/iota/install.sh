#!/usr/bin/env bash
# Install npm @iota/iota-sdk@1.15.1 (every transitive version pinned by package-lock.json)
# into a cache directory, for the layer-1 adapter's golden tests under Node 20.
# Idempotent. Usage: bash tools/iota/install.sh [CACHE_DIR]   (default: <repo>/.cache/iota-ts)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${1:-${LEARNAE_IOTA_TS:-$repo/.cache/iota-ts}}"
mkdir -p "$cache"
stamp="$cache/.installed"
want="$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -f "$cache/node_modules/@iota/iota-sdk/package.json" ]]; then
  echo "iota-ts: already installed in $cache" >&2
  exit 0
fi
cp "$here/package.json" "$here/package-lock.json" "$cache/"
cd "$cache"
echo "iota-ts: installing @iota/iota-sdk@1.15.1 into $cache" >&2
npm ci --no-audit --no-fund --loglevel=error --engine-strict=false >&2
echo "$want" > "$stamp"
