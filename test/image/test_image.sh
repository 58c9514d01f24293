#!/usr/bin/env bash
# What can be checked of the container image without a container engine:
#  - every shared library the controller binary NEEDS comes from a package
#    that the Containerfile's runtime stage installs (or from libc6, which
#    the debian:12-slim base has);
#  - the runtime user is numeric and non-root, as runAsNonRoot requires;
#  - the Deployment runs the image's entrypoint with flags the binary knows,
#    and its probes use the ports the flags bind.
# Prints cmocka-style result lines so that hack/run-tests.sh adds them up.
set -uo pipefail
root=${PULLPOLICY_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${PULLPOLICY_BUILD:-${BUILD:-build}}
[[ $build == /* ]] || build=$root/$build
bin=$build/pullpolicy-controller
cf=$root/Containerfile
dep=$root/manifests/base/deployment.yaml

# shellcheck source=../support/check.sh
source "$root/test/support/check.sh"

# The packages of the last stage's apt-get install line(s).
runtime_packages() {
        awk '/^FROM /{stage++} {print stage "\t" $0}' "$cf" |
                awk -F'\t' -v last="$(grep -c '^FROM ' "$cf")" '$1 == last {print $2}' |
                sed -n '/apt-get install/,/&&/p' | tr ' \\' '\n\n' |
                grep -E '^[a-z0-9][a-z0-9.+-]+$' | grep -vE '^(apt-get|install|rm|-y)$'
}

libraries_from_runtime_packages() {
        local pkgs lib path pkg ok=0
        pkgs=$(runtime_packages)
        [ -n "$pkgs" ] || { echo "    no runtime packages found in $cf"; return 1; }
        for lib in $(readelf -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
                path=$(ldd "$bin" | awk -v l="$lib" '$1 == l {print $3}')
                pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1)
                [ -n "$pkg" ] || pkg=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1)
                if [ "$pkg" = libc6 ] || grep -qxF "$pkg" <<<"$pkgs"; then
                        echo "    $lib <- $pkg"
                else
                        echo "    $lib comes from $pkg, which the runtime stage does not install"
                        ok=1
                fi
        done
        return $ok
}

user_numeric_non_root() {
        local u
        u=$(awk '/^USER /{u=$2} END {print u}' "$cf")
        echo "    USER $u"
        [[ $u =~ ^[0-9]+(:[0-9]+)?$ ]] && [ "${u%%:*}" != 0 ]
}

deployment_matches_image() {
        local ep ok=0 flag
        ep=$(sed -n 's/^ENTRYPOINT \["\([^"]*\)".*/\1/p' "$cf")
        [ "$ep" = /usr/local/bin/pullpolicy-controller ] || { echo "    entrypoint $ep"; ok=1; }
        # No command: override, so the entrypoint runs with the Deployment's args.
        grep -qE '^\s+command:' "$dep" && { echo "    the Deployment overrides the entrypoint"; ok=1; }
        # The help is read whole first: grep -q stops reading at its first match, and under
        # pipefail the controller's SIGPIPE on a long help would read as a missing flag.
        local help
        help=$("$bin" --help)
        for flag in $(sed -n 's/^ *- \(--[a-z-]*\).*/\1/p' "$dep"); do
                grep -q -- "$flag" <<<"$help" || { echo "    unknown flag $flag"; ok=1; }
        done
        grep -q -- '--health-probe-bind-address=:8081' "$dep" && grep -q 'containerPort: 8081' "$dep" ||
                { echo "    probes and health port disagree"; ok=1; }
        grep -q 'runAsNonRoot: true' "$dep" && grep -q 'readOnlyRootFilesystem: true' "$dep" &&
                grep -q 'allowPrivilegeEscalation: false' "$dep" ||
                { echo "    restricted securityContext incomplete"; ok=1; }
        return $ok
}

check_begin 3
# The image builds with plain `make build`; a sanitizer build (make SANITIZE=1) links
# libasan and libubsan, which no runtime image should carry.
if [ ! -x "$bin" ]; then
        check_fail runtime_stage_provides_every_library "$bin is not built"
elif readelf -d "$bin" | grep -qE 'Shared library: \[lib(asan|ubsan)'; then
        check_skip runtime_stage_provides_every_library \
                "$bin is a sanitizer build (links libasan/libubsan); the image's binary is built without them"
else
        check runtime_stage_provides_every_library libraries_from_runtime_packages
fi
check user_is_numeric_and_not_root user_numeric_non_root
if [ -x "$bin" ]; then
        check deployment_matches_the_image deployment_matches_image
else
        check_fail deployment_matches_the_image "$bin is not built"
fi
check_end
