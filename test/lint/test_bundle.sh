#!/usr/bin/env bash
# The OLM bundle: bundle/ is what hack/gen-bundle.sh makes of manifests/ (make lint's drift
# check, which must also catch a hand edit and a manifests/ change), it passes OperatorHub's
# validators (default, OperatorHub and good-practices suites) with no error and no warning, and
# the CSV carries manifests/' Deployment and RBAC as they are.
set -uo pipefail
root=${PULLPOLICY_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=../support/check.sh
source "$root/test/support/check.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tool=$(bash "$root/hack/build-tool.sh" olm-bundle --print-bin 2>"$tmp/build.err") || { cat "$tmp/build.err"; exit 1; }
csv=$root/bundle/manifests/pullpolicy.clusterserviceversion.yaml
kubectl=$(bash "$root/hack/build-control-plane.sh" --print-bindir 2>/dev/null)/kubectl

committed_is_current() { bash "$root/hack/gen-bundle.sh" --check >"$tmp/check.out" 2>&1 || { cat "$tmp/check.out"; return 1; }; }

# A hand edit of the generated CSV is caught, with the diff.
hand_edit_fails_check() {
        mkdir -p "$tmp/edit" && cp -r "$root/bundle" "$root/bundle.Dockerfile" "$tmp/edit/"
        sed -i 's/^  replicas: 2$/  replicas: 3/; s/replicas: 2$/replicas: 3/' "$tmp/edit/bundle/manifests/pullpolicy.clusterserviceversion.yaml"
        ! cmp -s "$csv" "$tmp/edit/bundle/manifests/pullpolicy.clusterserviceversion.yaml" || { echo "the edit changed nothing"; return 1; }
        ! bash "$root/hack/gen-bundle.sh" --check "$tmp/edit/bundle" >"$tmp/edit.out" 2>&1 &&
                grep -q 'replicas: 3' "$tmp/edit.out" && grep -q 'run make bundle' "$tmp/edit.out"
}

# A change in manifests/ without `make bundle` is caught.
manifest_change_fails_check() {
        mkdir -p "$tmp/src" && cp -r "$root/manifests" "$root/crds" "$tmp/src/" && mkdir -p "$tmp/src/hack" && cp -r "$root/hack/olm" "$tmp/src/hack/"
        sed -i 's/memory: 64Mi/memory: 65Mi/' "$tmp/src/manifests/base/deployment.yaml"
        ! bash "$root/hack/gen-bundle.sh" --check "$root/bundle" "$tmp/src" >"$tmp/src.out" 2>&1 && grep -q '65Mi' "$tmp/src.out"
}

validators_pass() {
        "$tool" validate -k8s-version 1.37 "$root/bundle" | tee "$tmp/validate.out"
        [ "${PIPESTATUS[0]}" -eq 0 ] && grep -q ', 0 errors, 0 warnings$' "$tmp/validate.out"
}

# The validators fail a CSV that OperatorHub refuses (here: without its icon).
validators_catch_a_bad_csv() {
        mkdir -p "$tmp/bad" && cp -r "$root/bundle" "$tmp/bad/"
        sed -i '/^  icon:/,/^  install:/{/^  install:/!d};' "$tmp/bad/bundle/manifests/pullpolicy.clusterserviceversion.yaml"
        ! "$tool" validate "$tmp/bad/bundle" >"$tmp/bad.out" 2>&1 && grep -E 'ERROR|WARNING' "$tmp/bad.out"
}

# The CSV's Deployment spec and cluster permissions are manifests/' (compared as JSON).
csv_carries_manifests() {
        [ -x "$kubectl" ] || { echo "no kubectl (make controlplane)"; return 1; }
        local k
        k=$("$kubectl" kustomize "$root/manifests" | "$tool" tojson - | jq '{items: .}') || return 1
        "$tool" tojson "$csv" | jq '.[0]' >"$tmp/csv.json" || return 1
        printf '%s' "$k" | jq -S '.items[] | select(.kind=="Deployment") | .spec' >"$tmp/want-dep.json"
        jq -S '.spec.install.spec.deployments[0].spec' "$tmp/csv.json" >"$tmp/got-dep.json"
        printf '%s' "$k" | jq -S '.items[] | select(.kind=="ClusterRole" and .metadata.name=="pullpolicy-controller") | .rules' >"$tmp/want-rules.json"
        jq -S '.spec.install.spec.clusterPermissions[0].rules' "$tmp/csv.json" >"$tmp/got-rules.json"
        diff -u "$tmp/want-dep.json" "$tmp/got-dep.json" && diff -u "$tmp/want-rules.json" "$tmp/got-rules.json" &&
                [ "$(jq -r '.spec.install.spec.clusterPermissions[0].serviceAccountName' "$tmp/csv.json")" = pullpolicy-controller ]
}

check_begin 6
check committed_is_current committed_is_current
check hand_edit_fails_check hand_edit_fails_check
check manifest_change_fails_check manifest_change_fails_check
check validators_pass validators_pass
check validators_catch_a_bad_csv validators_catch_a_bad_csv
check csv_carries_manifests csv_carries_manifests
check_end
