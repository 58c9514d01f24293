#!/usr/bin/env bash
# make run: a local control plane with the OpenShift simulation, the CRD, the
# controller and the samples; then shows what the controller did and leaves
# everything running (make stop ends it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
BUILD=${BUILD:-build}
RUN_DIR=${RUN_DIR:-$root/.run}
mkdir -p "$RUN_DIR"
export PATH="/usr/local/go/bin:$PATH"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "starting the local control plane (etcd, kube-apiserver, kube-controller-manager)"
bash hack/testenv.sh start "$RUN_DIR"
export KUBECONFIG="$RUN_DIR/kubeconfig"
bindir=$(bash hack/build-control-plane.sh --print-bindir)
kubectl() { "$bindir/kubectl" "$@"; }

# The OpenShift release the dockercfg provisioner behaves like (test/sim/main.c): current (4.16.z
# late, 4.17.z late, 4.18+), early416 (4.16.0/4.17.0), legacy (before 4.16) or removed (image
# registry Removed / capability disabled).
SIM_MODE=${PULLPOLICY_SIM_MODE:-current}
case $SIM_MODE in
current | early416 | legacy | removed) ;;
*)
        echo "PULLPOLICY_SIM_MODE=$SIM_MODE: not one of current, early416, legacy, removed" >&2
        exit 2
        ;;
esac
say "simulating OpenShift (mode $SIM_MODE; PULLPOLICY_SIM_MODE chooses): image.openshift.io, system:image-puller, the global pull secret, the registry objects, the dockercfg provisioner"
bash hack/openshift-sim.sh install "$RUN_DIR"
if [ "$SIM_MODE" = removed ]; then
        bash hack/openshift-sim.sh registry "$RUN_DIR" removed
fi
# A second `make run` reuses what the first started (its mode is in the provisioner's log).
if bash hack/openshift-sim.sh status "$RUN_DIR" >/dev/null 2>&1; then
        echo "the dockercfg provisioner already runs: $(grep -m1 -o 'mode [a-z0-9]*' "$RUN_DIR/logs/openshift-sim.log" 2>/dev/null || echo 'mode unknown') (make stop to change it)"
else
        bash hack/openshift-sim.sh start "$RUN_DIR" --mode="$SIM_MODE" --delay=2
        echo "dockercfg provisioner: mode $SIM_MODE (log $RUN_DIR/logs/openshift-sim.log)"
fi

say "installing the PullPolicy CRD"
kubectl apply --server-side -k crds/ >/dev/null
kubectl wait --for=condition=Established crd/pullpolicies.pullpolicy.io --timeout=60s >/dev/null

# R12 needs a registry to prove credentials at: Debian's docker-registry on loopback with TLS
# and htpasswd (hack/test-registry.sh; state in $RUN_DIR/registry).
verify_flags=()
if command -v docker-registry >/dev/null; then
        say "starting a local registry (TLS, htpasswd) for the credential checks"
        bash hack/test-registry.sh start "$RUN_DIR/registry"
        echo "registry on 127.0.0.1:$(cat "$RUN_DIR/registry/port")"
        verify_flags=(--verify-credentials --registry-ca-file="$RUN_DIR/registry/ca.pem")
else
        echo "docker-registry not installed (hack/install-deps.sh): no credential checks"
fi

say "starting pullpolicy-controller (log: $RUN_DIR/controller.log)"
kubectl create namespace pullpolicy-system --dry-run=client -o yaml | kubectl apply -f - >/dev/null
if [ -f "$RUN_DIR/controller.pid" ] && kill -0 "$(cat "$RUN_DIR/controller.pid")" 2>/dev/null; then
        echo "already running (pid $(cat "$RUN_DIR/controller.pid"))"
else
        POD_NAMESPACE=pullpolicy-system nohup "$BUILD/pullpolicy-controller" \
                --kubeconfig="$KUBECONFIG" --distribution-namespaces=pullpolicy-system \
                --metrics-bind-address=127.0.0.1:0 --health-probe-bind-address=127.0.0.1:0 \
                "${verify_flags[@]}" >"$RUN_DIR/controller.log" 2>&1 &
        echo $! >"$RUN_DIR/controller.pid"
fi

say "applying manifests/samples/"
kubectl apply -f manifests/samples/00-namespaces.yaml >/dev/null
kubectl apply -f manifests/samples/ | sed 's/^/  /'

say "waiting for the policies to be Ready"
if ! kubectl wait --for=condition=Ready ppol --all -A --timeout=90s >/dev/null; then
        echo "not all policies became Ready within 90 s; see below and $RUN_DIR/controller.log"
fi

say "kubectl get ppol -A"
kubectl get ppol -A

say "RoleBindings the controller made"
kubectl get rolebindings -A -l app.kubernetes.io/managed-by=pullpolicy-controller \
        -o custom-columns='NAMESPACE:.metadata.namespace,NAME:.metadata.name,ROLE:.roleRef.name,SUBJECTS:.subjects[*].name'

say "service accounts and their pull secrets"
for ns in project-a project-b project-c pullpolicy-system; do
        kubectl get serviceaccounts -n "$ns" \
                -o custom-columns='NAMESPACE:.metadata.namespace,NAME:.metadata.name,IMAGE-PULL-SECRETS:.imagePullSecrets[*].name' \
                --no-headers
done | column -t

say "copied secrets (R5)"
kubectl get secrets -A -l app.kubernetes.io/managed-by=pullpolicy-controller \
        -o custom-columns='NAMESPACE:.metadata.namespace,NAME:.metadata.name,TYPE:.type'

say "a Pod created now in project-b as 'default' carries the linked secrets"
kubectl -n project-b delete pod demo --ignore-not-found >/dev/null
kubectl -n project-b run demo --image=image-registry.openshift-image-registry.svc:5000/project-b/app \
        --restart=Never >/dev/null
kubectl -n project-b get pod demo -o jsonpath='{range .spec.imagePullSecrets[*]}  {.name}{"\n"}{end}'

say "global pull secret registries (openshift-config/pull-secret)"
kubectl -n openshift-config get secret pull-secret -o jsonpath='{.data.\.dockerconfigjson}' |
        base64 -d | python3 -c 'import json,sys; [print("  " + k) for k in json.load(sys.stdin)["auths"]]'

if [ ${#verify_flags[@]} -gt 0 ]; then
        say "credentials proven at the registry (R12): a good secret and an expired one"
        host="127.0.0.1:$(cat "$RUN_DIR/registry/port")"
        user=$(cat "$RUN_DIR/registry/user")
        for pair in "robot:$(cat "$RUN_DIR/registry/password")" "expired-robot:expired-password"; do
                name=${pair%%:*}
                pw=${pair#*:}
                kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Secret
metadata: {name: registry-$name, namespace: pullpolicy-system}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths":{"$host":{"username":"$user","password":"$pw"}}}'
---
apiVersion: pullpolicy.io/v1alpha1
kind: PullPolicy
metadata: {name: verify-$name, namespace: pullpolicy-system}
spec:
  subjects: {serviceAccounts: [default]}
  pullSecrets: [{name: registry-$name}]
  verifyCredentials: true
YAML
        done
        for name in robot expired-robot; do
                for _ in $(seq 60); do
                        reason=$(kubectl -n pullpolicy-system get ppol "verify-$name" \
                                -o jsonpath='{.status.conditions[?(@.type=="CredentialsVerified")].reason}')
                        case $reason in Verified | CredentialsRejected | RegistryUnreachable) break ;; esac
                        sleep 1
                done
                [ -n "$reason" ] && [ "$reason" != Verifying ] ||
                        echo "  verify-$name: no verification result within 60 s"
        done
        kubectl -n pullpolicy-system get ppol verify-robot verify-expired-robot -o \
                custom-columns='NAME:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].status,CREDENTIALS:.status.conditions[?(@.type=="CredentialsVerified")].reason,MESSAGE:.status.conditions[?(@.type=="CredentialsVerified")].message'
fi

say "a pod that predates a link (R13): found, reported, an Event on the pod"
# A second run starts over: deleting the policy unlinks its secret (its finalizer), so that the
# pod made below is again older than the link.
kubectl -n pullpolicy-system delete ppol stale-demo --ignore-not-found --timeout=60s >/dev/null
kubectl -n pullpolicy-system delete pod stale-demo --ignore-not-found --timeout=60s >/dev/null
kubectl -n pullpolicy-system create serviceaccount demo-app --dry-run=client -o yaml |
        kubectl apply -f - >/dev/null
kubectl -n pullpolicy-system run stale-demo --image=registry.example.com/team/app:1 \
        --restart=Never --overrides='{"spec":{"serviceAccountName":"demo-app"}}' >/dev/null
# There is no kubelet here: set the status the kubelet reports when the registry refuses a pull.
kubectl -n pullpolicy-system patch pod stale-demo --subresource=status --type=strategic -p \
        '{"status":{"containerStatuses":[{"name":"stale-demo","image":"registry.example.com/team/app:1","imageID":"","ready":false,"restartCount":0,"state":{"waiting":{"reason":"ImagePullBackOff","message":"pull access denied"}}}]}}' >/dev/null
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Secret
metadata: {name: demo-registry, namespace: pullpolicy-system}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths":{"registry.example.com":{"auth":"ZGVtbzpkZW1v"}}}'
---
apiVersion: pullpolicy.io/v1alpha1
kind: PullPolicy
metadata: {name: stale-demo, namespace: pullpolicy-system}
spec:
  subjects: {serviceAccounts: [demo-app]}
  pullSecrets: [{name: demo-registry}]
  dockercfg: {wait: Never}
YAML
for _ in $(seq 60); do
        [ "$(kubectl -n pullpolicy-system get ppol stale-demo -o jsonpath='{.status.stalePods}')" = 1 ] && break
        sleep 1
done
kubectl -n pullpolicy-system get ppol stale-demo -o \
        custom-columns='NAME:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].status,STALE-PODS:.status.stalePods,PROBLEM:.status.problems[?(@.reason=="StalePod")].message'
for _ in $(seq 30); do
        kubectl -n pullpolicy-system get events --field-selector \
                involvedObject.name=stale-demo,reason=StalePullSecrets -o name | grep -q . && break
        sleep 1
done
kubectl -n pullpolicy-system get events --field-selector \
        involvedObject.kind=Pod,involvedObject.name=stale-demo,reason=StalePullSecrets \
        -o custom-columns='TYPE:.type,REASON:.reason,OBJECT:.involvedObject.name,MESSAGE:.message'

echo
echo "Everything keeps running. Point kubectl at it and stop it with:"
echo "export KUBECONFIG=$KUBECONFIG"
echo "make stop"
