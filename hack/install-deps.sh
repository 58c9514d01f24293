#!/usr/bin/env bash
# Installs the Debian packages that building and testing pullpolicy need, and checks that a
# Go toolchain is there for the test control plane (hack/build-control-plane.sh).
#
# Idempotent and silent when everything is present: it asks dpkg first and only runs
# `apt-get update` + `apt-get install` for what is missing. Runs as root (or via sudo) with
# no TTY. Downloads nothing but Debian packages.
set -euo pipefail

PACKAGES=(
    build-essential pkg-config
    libcurl4-openssl-dev libjson-c-dev libev-dev libyaml-dev libcmocka-dev libmicrohttpd-dev
    valgrind clang clang-format clang-tidy cppcheck
    openssl curl ca-certificates lua5.1 python3
    # the bundle and Helm chart tests compare rendered objects as JSON
    jq
    # a real registry and client for the credential tests (hack/test-registry.sh)
    docker-registry skopeo
    # promtool (checks the /metrics exposition in tests), libFuzzer's runtime (make fuzz)
    prometheus libclang-rt-14-dev
    # used by hack/testenv.sh and hack/build-control-plane.sh: flock, setsid, pgrep/pkill -P
    util-linux procps coreutils
)

# One dpkg-query for all: it names the installed ones (unknown names only go to stderr).
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null |
    awk '$2 == "install" && $3 == "ok" && $4 == "installed" { print $1 }' || true)
missing=()
for p in "${PACKAGES[@]}"; do
    grep -qxF "$p" <<<"$installed" || missing+=("$p")
done

if ((${#missing[@]})); then
    echo "install-deps: installing ${missing[*]}" >&2
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || {
            echo "install-deps: not root and no sudo; install: ${missing[*]}" >&2
            exit 1
        }
        SUDO=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Go builds only the test control plane (etcd, kube-apiserver, kube-controller-manager,
# kubectl). The unit tests do not need it, so a missing Go is a warning here and an error in
# hack/build-control-plane.sh.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ -x /usr/local/go/bin/go ]] && PATH="/usr/local/go/bin:$PATH"
want=$(awk '$1 == "go" { print $2; exit }' "$root/hack/tools/kube/go.mod")
if ! command -v go >/dev/null; then
    echo "install-deps: WARNING: no 'go' on PATH (nor /usr/local/go/bin); the test control" \
        "plane needs Go >= $want (integration tests and 'make run' will not work)" >&2
else
    have=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
    if [[ $(printf '%s\n%s\n' "$want" "$have" | sort -V | head -n1) != "$want" ]]; then
        echo "install-deps: WARNING: go $have is older than go $want that hack/tools needs" >&2
    fi
fi
exit 0
