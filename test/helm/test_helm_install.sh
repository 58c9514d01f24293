#!/usr/bin/env bash
# The Helm chart on a real control plane of its own (hack/testenv.sh, with the OpenShift
# simulation): `helm install`, `helm upgrade`, then build/pullpolicy-controller runs with the
# arguments of the installed Deployment and a token of the chart's ServiceAccount (in-cluster
# layout, as test/support/incluster.h does for the kustomize install) and converges a sample
# policy; `helm uninstall` leaves no cluster-scoped object but the CRD (crds.keep=true), and
# none at all with crds.keep=false. Prints cmocka-style lines for hack/run-tests.sh.
set -uo pipefail
root=${PULLPOLICY_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${PULLPOLICY_BUILD:-${BUILD:-build}}
[[ $build == /* ]] || build=$root/$build
# shellcheck source=../support/check.sh
source "$root/test/support/check.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pullpolicy-helm.XXXXXX")
env_dir=$tmp/testenv
logdir=$build/test-logs
mkdir -p "$logdir"
ctrl_pid=
cleanup() {
        [ -n "$ctrl_pid" ] && kill "$ctrl_pid" 2>/dev/null && wait "$ctrl_pid" 2>/dev/null
        bash "$root/hack/testenv.sh" stop "$env_dir" >/dev/null 2>&1
        # The leak check that runs last searches every log under test-logs.
        [ -f "$tmp/controller.log" ] && cp "$tmp/controller.log" "$logdir/helm-controller.log"
        rm -rf "$tmp"
}
trap cleanup EXIT

helm=$(bash "$root/hack/build-tool.sh" helm --print-bin 2>"$tmp/build.err") || { cat "$tmp/build.err"; exit 1; }
export HELM_CACHE_HOME=$tmp/helm/cache HELM_CONFIG_HOME=$tmp/helm/config HELM_DATA_HOME=$tmp/helm/data
chart=$root/charts/pullpolicy
ns=pullpolicy-system
if ! bash "$root/hack/testenv.sh" start "$env_dir" >"$tmp/testenv.log" 2>&1 ||
        ! bash "$root/hack/openshift-sim.sh" install "$env_dir" >>"$tmp/testenv.log" 2>&1; then
        tail -20 "$tmp/testenv.log"
        exit 1
fi
export KUBECONFIG=$env_dir/kubeconfig
PATH=$(cat "$env_dir/bindir"):$PATH
# shellcheck disable=SC1091
source "$env_dir/ports"

# Cluster-scoped objects that carry the chart's label, as "kind/name" lines.
cluster_scoped() {
        kubectl get clusterroles,clusterrolebindings,customresourcedefinitions,namespaces \
                -l app.kubernetes.io/name=pullpolicy -o name | sort
}

install() {
        kubectl create namespace "$ns" >/dev/null &&
                "$helm" install pullpolicy "$chart" -n "$ns" --wait=false >"$tmp/install.out" 2>&1 ||
                { cat "$tmp/install.out"; return 1; }
        kubectl get deploy/pullpolicy-controller sa/pullpolicy-controller role/pullpolicy-leader-election \
                pdb/pullpolicy-controller -n "$ns" -o name >/dev/null &&
                [ "$(cluster_scoped)" = "$(printf '%s\n' clusterrole.rbac.authorization.k8s.io/pullpolicy-admin \
                        clusterrole.rbac.authorization.k8s.io/pullpolicy-controller clusterrole.rbac.authorization.k8s.io/pullpolicy-view \
                        clusterrolebinding.rbac.authorization.k8s.io/pullpolicy-controller \
                        customresourcedefinition.apiextensions.k8s.io/pullpolicies.pullpolicy.io | sort)" ] ||
                { cluster_scoped; return 1; }
}

upgrade() {
        "$helm" upgrade pullpolicy "$chart" -n "$ns" --set replicas=1 --set logFormat=text --wait=false \
                >"$tmp/upgrade.out" 2>&1 || { cat "$tmp/upgrade.out"; return 1; }
        [ "$("$helm" status pullpolicy -n "$ns" -o json | jq -r '.version')" = 2 ] &&
                [ "$(kubectl get deploy/pullpolicy-controller -n "$ns" -o jsonpath='{.spec.replicas}')" = 1 ] &&
                kubectl get deploy/pullpolicy-controller -n "$ns" -o jsonpath='{.spec.template.spec.containers[0].args}' | grep -q -- '--log-format=text'
}

# No kubelet here: the Deployment's container is the local binary, started with the installed
# Deployment's arguments (ports aside: the other suites may hold them) and in-cluster files
# for a token of the chart's ServiceAccount, so that the chart's RBAC is what it runs with.
start_controller() {
        local sa_dir=$tmp/pod/var/run/secrets/kubernetes.io/serviceaccount
        mkdir -p "$sa_dir" && chmod 700 "$tmp/pod"
        (umask 077 && kubectl create token pullpolicy-controller -n "$ns" --duration=1h >"$sa_dir/token") || return 1
        cp "$env_dir/pki/ca.crt" "$sa_dir/ca.crt" && printf '%s' "$ns" >"$sa_dir/namespace"
        mapfile -t args < <(kubectl get deploy/pullpolicy-controller -n "$ns" -o json |
                jq -r '.spec.template.spec.containers[0].args[] | select(test("bind-address") | not)')
        [ "${#args[@]}" -ge 2 ] || { echo "no arguments in the Deployment"; return 1; }
        env -u KUBECONFIG KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="$APISERVER_PORT" \
                PULLPOLICY_SERVICEACCOUNT_ROOT="$tmp/pod" POD_NAMESPACE="$ns" POD_NAME=pullpolicy-controller-helm-0 \
                "$build/pullpolicy-controller" "${args[@]}" --metrics-bind-address=0 --health-probe-bind-address=0 \
                >"$tmp/controller.log" 2>&1 &
        ctrl_pid=$!
}

converges_sample() {
        start_controller || return 1
        kubectl apply -f "$root/manifests/samples/00-namespaces.yaml" -f "$root/manifests/samples/01-cross-project-user.yaml" >/dev/null || return 1
        if ! kubectl wait ppol/project-a-default -n project-b --for=condition=Ready --timeout=120s >/dev/null; then
                kubectl get ppol/project-a-default -n project-b -o yaml | sed -n '/^status:/,$p'
                tail -20 "$tmp/controller.log"
                return 1
        fi
        kubectl get rolebindings -n project-b -o json |
                jq -e '[.items[] | select(.roleRef.name=="system:image-puller" and any(.subjects[]; .name=="default" and .namespace=="project-a"))] | length == 1' >/dev/null &&
                kubectl get lease/pullpolicy-controller -n "$ns" -o jsonpath='{.spec.holderIdentity}' | grep -q . &&
                ! grep -qi 'forbidden' "$tmp/controller.log"
}

# Deleting the policy while the controller runs lets it remove its finalizer and RoleBinding.
policy_removed() {
        kubectl delete ppol/project-a-default -n project-b --timeout=60s >/dev/null &&
                kubectl get rolebindings -n project-b -o json |
                jq -e '[.items[] | select(.roleRef.name=="system:image-puller")] | length == 0' >/dev/null
}

uninstall_keeps_only_crd() {
        kill "$ctrl_pid" 2>/dev/null && wait "$ctrl_pid" 2>/dev/null
        ctrl_pid=
        "$helm" uninstall pullpolicy -n "$ns" --wait >"$tmp/uninstall.out" 2>&1 || { cat "$tmp/uninstall.out"; return 1; }
        [ "$(cluster_scoped | tr '\n' ' ')" = "customresourcedefinition.apiextensions.k8s.io/pullpolicies.pullpolicy.io " ] &&
                [ -z "$(kubectl get deploy,sa,role,rolebinding,pdb -n "$ns" -l app.kubernetes.io/name=pullpolicy -o name)" ] ||
                { cluster_scoped; kubectl get all -n "$ns"; return 1; }
}

uninstall_without_keep_removes_crd() {
        "$helm" install pullpolicy "$chart" -n "$ns" --set crds.keep=false --wait=false >"$tmp/install2.out" 2>&1 ||
                { cat "$tmp/install2.out"; return 1; }
        "$helm" uninstall pullpolicy -n "$ns" --wait >"$tmp/uninstall2.out" 2>&1 || { cat "$tmp/uninstall2.out"; return 1; }
        kubectl wait --for=delete crd/pullpolicies.pullpolicy.io --timeout=60s >/dev/null 2>&1
        [ -z "$(cluster_scoped)" ] || { cluster_scoped; return 1; }
}

check_begin 6
check helm_install install
check helm_upgrade upgrade
check controller_with_chart_token_converges_sample converges_sample
check policy_removed policy_removed
check uninstall_keeps_only_crd uninstall_keeps_only_crd
check uninstall_without_keep_removes_crd uninstall_without_keep_removes_crd
check_end
