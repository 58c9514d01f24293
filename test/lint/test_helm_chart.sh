#!/usr/bin/env bash
# The Helm chart without a cluster: `helm lint --strict`, and `helm template` with default
# values renders the objects of `kubectl kustomize manifests/` (compared as JSON, key order and
# formatting aside). Differences allowed, each named: the Namespace (Helm's
# --create-namespace makes it, or namespace.create=true renders it: checked too) and the CRD's
# helm.sh/resource-policy annotation (crds.keep, default true). Values reach the objects.
set -uo pipefail
root=${PULLPOLICY_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=../support/check.sh
source "$root/test/support/check.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
helm=$(bash "$root/hack/build-tool.sh" helm --print-bin 2>"$tmp/build.err") || { cat "$tmp/build.err"; exit 1; }
tool=$(bash "$root/hack/build-tool.sh" olm-bundle --print-bin 2>"$tmp/build.err") || { cat "$tmp/build.err"; exit 1; }
kubectl=$(bash "$root/hack/build-control-plane.sh" --print-bindir 2>/dev/null)/kubectl
chart=$root/charts/pullpolicy
export HELM_CACHE_HOME=$tmp/helm/cache HELM_CONFIG_HOME=$tmp/helm/config HELM_DATA_HOME=$tmp/helm/data

# Objects as a JSON array sorted by kind/namespace/name, with what the comparison ignores removed.
normalize() {
        "$tool" tojson - | jq -S '
                map(select(.kind != "Namespace")
                    | if .kind == "CustomResourceDefinition" then
                        del(.metadata.annotations["helm.sh/resource-policy"])
                        | if .metadata.annotations == {} then del(.metadata.annotations) else . end
                      else . end)
                | sort_by(.kind, .metadata.namespace // "", .metadata.name)'
}
render() { "$helm" template pullpolicy "$chart" --namespace pullpolicy-system "$@"; }

lint_strict() { "$helm" lint --strict "$chart" --namespace pullpolicy-system; }

# `"$@"`: extra `helm template` arguments; the comparison must then find them equal.
same_as_kustomize() {
        "$kubectl" kustomize "$root/manifests" | normalize >"$tmp/want.json" || return 1
        render "$@" | normalize >"$tmp/got.json" || return 1
        [ "$(jq length "$tmp/want.json")" -ge 10 ] || { echo "kustomize rendered too few objects"; return 1; }
        diff -u "$tmp/want.json" "$tmp/got.json" >"$tmp/diff" || { head -60 "$tmp/diff"; return 1; }
}
default_values_render_kustomize() { [ -x "$kubectl" ] || { echo "no kubectl"; return 1; }; same_as_kustomize; }

# The comparison sees a changed value (so it can fail): each of these must differ.
changed_values_differ() {
        local v
        for v in replicas=3 'securityContext.readOnlyRootFilesystem=false' \
                'podSecurityContext.runAsNonRoot=false' 'resources.limits.memory=256Mi' \
                leaderElection.enabled=false 'allowedClusterRoles={system:image-puller,view}' \
                podDisruptionBudget.enabled=false crds.install=false logFormat=text; do
                if same_as_kustomize --set "$v" >/dev/null; then echo "--set $v rendered the kustomize objects"; return 1; fi
        done
}

namespace_create_renders_kustomize_namespace() {
        "$kubectl" kustomize "$root/manifests" | "$tool" tojson - | jq -S '.[] | select(.kind=="Namespace")' >"$tmp/ns-want.json"
        render --set namespace.create=true | "$tool" tojson - | jq -S '.[] | select(.kind=="Namespace")' >"$tmp/ns-got.json"
        [ -s "$tmp/ns-want.json" ] && diff -u "$tmp/ns-want.json" "$tmp/ns-got.json"
}

values_reach_objects() {
        render --set 'distributionNamespaces={team-a,team-b}' --set 'allowedClusterRoles={system:image-puller,view}' \
                --set logFormat=text --set leaderElection.enabled=false --set serviceMonitor.enabled=true \
                --set metrics.port=9090 --set 'nodeSelector.disk=ssd' --set 'tolerations[0].operator=Exists' \
                --set image.repository=quay.example.com/pp --set image.tag=1.2.3 | "$tool" tojson - >"$tmp/v.json" || return 1
        local dep
        dep=$(jq -c '.[] | select(.kind=="Deployment") | .spec.template.spec' "$tmp/v.json")
        jq -e '.containers[0].args | index("--distribution-namespaces=team-a,team-b") and index("--allowed-cluster-roles=system:image-puller,view")
                and index("--log-format=text") and index("--metrics-bind-address=:9090") and (index("--leader-elect") | not)' <<<"$dep" >/dev/null &&
                jq -e '.nodeSelector.disk == "ssd" and .tolerations[0].operator == "Exists" and .containers[0].image == "quay.example.com/pp:1.2.3"' <<<"$dep" >/dev/null &&
                jq -e '[.[] | select(.kind=="ClusterRole" and .metadata.name=="pullpolicy-controller") | .rules[] | select(.verbs==["bind"]) | .resourceNames] == [["system:image-puller","view"]]' "$tmp/v.json" >/dev/null &&
                jq -e '[.[] | select(.kind=="Role" or .kind=="RoleBinding")] | length == 0' "$tmp/v.json" >/dev/null &&
                jq -e '[.[] | select(.kind=="ServiceMonitor" or .kind=="Service")] | length == 2' "$tmp/v.json" >/dev/null ||
                { jq . "$tmp/v.json" | head -80; return 1; }
}

check_begin 5
check lint_strict lint_strict
check default_values_render_kustomize default_values_render_kustomize
check changed_values_differ changed_values_differ
check namespace_create_renders_kustomize_namespace namespace_create_renders_kustomize_namespace
check values_reach_objects values_reach_objects
check_end
