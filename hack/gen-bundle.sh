#!/usr/bin/env bash
# The OLM bundle (bundle/, bundle.Dockerfile) from manifests/, crds/ and hack/olm/
# (hack/tools/olm-bundle generate). bundle/ is committed so that OperatorHub pipelines can
# take it as it is; `make lint` runs --check.
#
# Usage: hack/gen-bundle.sh [--check [BUNDLE_DIR [SOURCE_ROOT]]]
#   --check   generate into a temporary directory and fail (printing the diff) when the
#             committed bundle (or BUNDLE_DIR, with BUNDLE_DIR/../bundle.Dockerfile) differs
#             from it; SOURCE_ROOT (default: this repository) holds manifests/, crds/, hack/olm/
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=0.1.0
channel=candidate
tool=$(bash "$root/hack/build-tool.sh" olm-bundle --print-bin)

if [[ ${1:-} == --check ]]; then
    have=${2:-$root/bundle}
    src=${3:-$root}
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    "$tool" generate -version "$version" -channel "$channel" "$src" "$tmp/bundle"
    if ! diff -ru "$have" "$tmp/bundle" || ! diff -u "$(dirname "$have")/bundle.Dockerfile" "$tmp/bundle.Dockerfile"; then
        echo "gen-bundle: bundle/ differs from what hack/gen-bundle.sh generates from manifests/;" \
            "run make bundle and commit the result" >&2
        exit 1
    fi
    echo "gen-bundle: bundle/ is up to date"
    exit 0
fi
"$tool" generate -version "$version" -channel "$channel" "$root" "$root/bundle"
echo "gen-bundle: wrote bundle/ and bundle.Dockerfile"
