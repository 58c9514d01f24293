#!/usr/bin/env bash
# Builds the test control plane (etcd, kube-apiserver, kube-controller-manager, kubectl) from
# the upstream Go modules pinned in hack/tools/{kube,etcd}/go.mod, into a cache outside the
# repository keyed by both versions:
#
#   ${PULLPOLICY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pullpolicy}/
#       controlplane-k8s-<k8s version>-etcd-<etcd version>/bin/
#
# Usage: hack/build-control-plane.sh [--print-bindir]
#   --print-bindir   print the bin directory on stdout (building first if needed); every
#                    other message goes to stderr.
#
# The bin directory is published with one rename, so it holds all four binaries or does not
# exist: an interrupted build leaves no half cache. Concurrent callers serialise on a lock
# file and the later ones reuse what the first built. A cold build takes many minutes on two
# cores; a progress line is printed every 30 s.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
print_bindir=0
for arg in "$@"; do
    case $arg in
    --print-bindir) print_bindir=1 ;;
    -h | --help)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *)
        echo "build-control-plane: unknown argument: $arg" >&2
        exit 2
        ;;
    esac
done

log() { echo "build-control-plane: $*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

# Version of module $2 required by go.mod $1 (single-line or block `require`, not `replace`).
mod_version() {
    awk -v m="$2" '
        /=>/ { next }
        $1 == "require" && $2 == m { print $3; exit }
        $1 == m && $2 ~ /^v[0-9]/ { print $2; exit }' "$1"
}

k8s_ver=$(mod_version "$root/hack/tools/kube/go.mod" k8s.io/kubernetes)
etcd_ver=$(mod_version "$root/hack/tools/etcd/go.mod" go.etcd.io/etcd/server/v3)
[[ -n $k8s_ver ]] || die "no k8s.io/kubernetes version in hack/tools/kube/go.mod"
[[ -n $etcd_ver ]] || die "no go.etcd.io/etcd/server/v3 version in hack/tools/etcd/go.mod"

cache=${PULLPOLICY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pullpolicy}
dest="$cache/controlplane-k8s-$k8s_ver-etcd-$etcd_ver"
bindir="$dest/bin"
binaries=(etcd kube-apiserver kube-controller-manager kubectl)

complete() {
    local b
    for b in "${binaries[@]}"; do
        [[ -x $bindir/$b ]] || return 1
    done
}

done_msg() {
    if ((print_bindir)); then
        echo "$bindir"
    else
        log "control plane k8s $k8s_ver / etcd $etcd_ver ready in $bindir"
    fi
    exit 0
}

complete && done_msg

mkdir -p "$dest"
exec 9>"$dest/.lock"
if ! flock -n 9; then
    log "another build of $dest is running; waiting for it"
    flock 9
fi
# The holder of the lock may have finished the build while we waited.
complete && done_msg

[[ -x /usr/local/go/bin/go ]] && PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || die "Go is needed to build the test control plane (see hack/install-deps.sh)"

# A bin/ without every binary is left over from an older layout; the rename below needs the
# name free.
rm -rf "$bindir"
tmp=$(mktemp -d "$dest/.build.XXXXXX")
progress_pid=
cleanup() {
    if [[ -n $progress_pid ]]; then
        pkill -P "$progress_pid" sleep 2>/dev/null || true
        kill "$progress_pid" 2>/dev/null || true
        # Reaps it without bash's "Terminated" notice.
        wait "$progress_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

buildlog="$tmp/build.log"
: >"$buildlog"
start=$SECONDS
(
    # `go build -v` names each package as it is compiled: counting them shows progress.
    while sleep 30; do
        n=$(wc -l <"$buildlog")
        echo "build-control-plane: still building ($((SECONDS - start))s elapsed," \
            "$n packages compiled so far)" >&2
    done
) 9>&- &
progress_pid=$!

# -mod=mod: go.sum is committed, but a toolchain that wants one more checksum should not fail
# the build. No VCS stamping: the main packages are not this repository's code.
export GOFLAGS="-mod=mod -buildvcs=false"
# Static binaries; cgo would only add a C toolchain step to every net/os-user package.
export CGO_ENABLED=0
# nice: the machine is shared with C builds that should stay responsive.
gobuild=(nice -n 10 go build -v -trimpath)

ver_pkgs=(k8s.io/component-base/version k8s.io/client-go/pkg/version)
minor=${k8s_ver#v*.}
minor=${minor%%.*}
ldflags="-s -w"
for p in "${ver_pkgs[@]}"; do
    ldflags+=" -X $p.gitVersion=$k8s_ver -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=clean"
done

log "building kube-apiserver, kube-controller-manager, kubectl $k8s_ver and etcd $etcd_ver" \
    "into $bindir (a cold build takes a while)"
mkdir -p "$tmp/bin"
if ! (cd "$root/hack/tools/kube" && "${gobuild[@]}" -ldflags "$ldflags" -o "$tmp/bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl) >>"$buildlog" 2>&1; then
    tail -n 40 "$buildlog" >&2
    die "building the Kubernetes binaries failed"
fi
if ! (cd "$root/hack/tools/etcd" && "${gobuild[@]}" -ldflags "-s -w" -o "$tmp/bin/etcd" .) \
    >>"$buildlog" 2>&1; then
    tail -n 40 "$buildlog" >&2
    die "building etcd failed"
fi
for b in "${binaries[@]}"; do
    [[ -x $tmp/bin/$b ]] || die "the build produced no $b"
done

mv -T "$tmp/bin" "$bindir"
log "built in $((SECONDS - start))s"
complete || die "$bindir is incomplete after the build"
done_msg
