#!/usr/bin/env bash
# Builds one Go tool of hack/tools/ into a cache outside the repository, keyed by its pinned
# version, beside the control plane (hack/build-control-plane.sh):
#
#   ${PULLPOLICY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pullpolicy}/<tool>-<key>/bin/<tool>
#
#   helm             helm.sh/helm/v4/cmd/helm at the version hack/tools/helm/go.mod requires
#   olm-bundle       hack/tools/olm-bundle (generate, validate) on github.com/operator-framework/api; its key
#                    also hashes its *.go and go.sum (the program is ours)
#
# Usage: hack/build-tool.sh TOOL [--print-bin]
#   --print-bin   print the binary's path on stdout (building first if needed); every other
#                 message goes to stderr.
#
# The bin directory is published with one rename; concurrent callers serialise on a lock.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { echo "build-tool: $*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}
(($# >= 1)) || die "usage: $0 TOOL [--print-bin]"
tool=$1
print_bin=0
[[ ${2:-} == --print-bin ]] && print_bin=1

mod_version() {
    awk -v m="$2" '
        /=>/ { next }
        $1 == "require" && $2 == m { print $3; exit }
        $1 == m && $2 ~ /^v[0-9]/ { print $2; exit }' "$1"
}

src="$root/hack/tools/$tool"
case $tool in
helm)
    key=$(mod_version "$src/go.mod" helm.sh/helm/v4)
    pkg=helm.sh/helm/v4/cmd/helm
    # What `helm version` prints.
    ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$key"
    ;;
olm-bundle)
    key=$(mod_version "$src/go.mod" github.com/operator-framework/api)-$(cat "$src"/*.go "$src/go.sum" | sha256sum | cut -c1-12)
    pkg=.
    ldflags="-s -w"
    ;;
*) die "unknown tool $tool (helm, olm-bundle)" ;;
esac
[[ -n $key && $key != -* ]] || die "no pinned version for $tool in $src/go.mod"

cache=${PULLPOLICY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pullpolicy}
dest="$cache/$tool-$key"
bin="$dest/bin/$tool"

done_msg() {
    if ((print_bin)); then echo "$bin"; else log "$tool $key ready: $bin"; fi
    exit 0
}
[[ -x $bin ]] && done_msg

mkdir -p "$dest"
exec 9>"$dest/.lock"
if ! flock -n 9; then
    log "another build of $dest is running; waiting for it"
    flock 9
fi
[[ -x $bin ]] && done_msg

[[ -x /usr/local/go/bin/go ]] && PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || die "Go is needed to build $tool (see hack/install-deps.sh)"

rm -rf "$dest/bin"
tmp=$(mktemp -d "$dest/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
log "building $tool $key into $dest/bin (once; a cold build takes a few minutes)"
start=$SECONDS
mkdir -p "$tmp/bin"
if ! (cd "$src" && nice -n 10 go build -trimpath -ldflags "$ldflags" -o "$tmp/bin/$tool" "$pkg") \
    >"$tmp/build.log" 2>&1; then
    tail -n 40 "$tmp/build.log" >&2
    die "building $tool failed"
fi
mv -T "$tmp/bin" "$dest/bin"
log "built $tool in $((SECONDS - start))s"
done_msg
