#!/usr/bin/env bash
# Build kubo (the IPFS daemon the tests and production gateways talk to) from its own Go
# module into a cache directory of the project. Idempotent: returns at once when the same
# version was built by this same script (a stamp next to the binary records both).
#
# `go install github.com/ipfs/kubo/cmd/ipfs@v0.43.1` cannot work: kubo's go.mod replaces
# go-libp2p with a fork the module proxy does not serve, and `go install pkg@version`
# refuses modules with replace directives. The go.mod's own comment says the replace goes
# once a go-libp2p release requires quic-go >= v0.62.0 and webtransport-go >= v0.13.0;
# go-libp2p v0.50.0 is that release. So: fetch kubo's source from the module proxy, drop
# the replace, require go-libp2p v0.50.0, and build.
#
# Usage: bash tools/kubo/install.sh [CACHE_DIR]   (default: <repo>/.cache/kubo, or $LEARNAE_KUBO)
# Result: CACHE_DIR/bin/ipfs. GOOS/GOARCH in the environment cross-compile (e.g. for a Pi).
set -euo pipefail
KUBO_VERSION=v0.43.1
LIBP2P_VERSION=v0.50.0
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${1:-${LEARNAE_KUBO:-$repo/.cache/kubo}}"
bin="$cache/bin/ipfs"
stamp="$cache/.installed"
want="kubo $KUBO_VERSION go-libp2p $LIBP2P_VERSION ${GOOS:-host}/${GOARCH:-host} $(sha256sum "$here/install.sh" | cut -d' ' -f1)"
if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "kubo: $KUBO_VERSION already built in $cache" >&2
  exit 0
fi
command -v go >/dev/null || { echo "kubo: the Go toolchain (go) is not installed" >&2; exit 1; }
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
started=$SECONDS
mkdir -p "$cache/bin"
dir="$(go mod download -json "github.com/ipfs/kubo@$KUBO_VERSION" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')"
[[ -n "$dir" && -d "$dir" ]] || { echo "kubo: go mod download gave no source directory" >&2; exit 1; }
src="$cache/src"
rm -rf "$src"
cp -r "$dir" "$src"
chmod -R u+w "$src"
cd "$src"
go mod edit -dropreplace=github.com/libp2p/go-libp2p \
  -require="github.com/libp2p/go-libp2p@$LIBP2P_VERSION"
echo "kubo: building $KUBO_VERSION (go-libp2p $LIBP2P_VERSION) into $cache/bin" >&2
go build -mod=mod -trimpath -o "$bin.tmp" ./cmd/ipfs
mv "$bin.tmp" "$bin"
cd "$cache"
rm -rf "$src"
if [[ "$(go env GOOS)/$(go env GOARCH)" == "$(go env GOHOSTOS)/$(go env GOHOSTARCH)" ]]; then
  got="$("$bin" version --number)"
  [[ "v$got" == "$KUBO_VERSION" ]] || { echo "kubo: built version $got, wanted $KUBO_VERSION" >&2; exit 1; }
else
  got="${KUBO_VERSION#v} for $(go env GOOS)/$(go env GOARCH) (cross-compiled, not run here)"
fi
echo "$want" > "$stamp"
echo "kubo: built $got in $((SECONDS - started)) s" >&2
