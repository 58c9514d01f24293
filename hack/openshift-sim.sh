#!/usr/bin/env bash
# The OpenShift simulation on a running local control plane (hack/testenv.sh).
#
#   openshift-sim.sh install DIR               apply test/fixtures/openshift (system:image-puller,
#                                              the image.openshift.io CRD, openshift-config and its
#                                              pull-secret, the registry objects of `registry`);
#                                              waits until the CRDs are Established and
#                                              /apis/image.openshift.io/v1 is discoverable; sets
#                                              the registry state to managed
#   openshift-sim.sh registry DIR STATE        the cluster objects OpenShift's controllers read to
#                                              decide whether dockercfg secrets are provisioned:
#                                              managed: ClusterVersion "version" lists ImageRegistry
#                                                in status.capabilities.enabledCapabilities, the
#                                                "image-registry" ClusterOperator is Available/Ready,
#                                                configs.imageregistry.operator.openshift.io/cluster
#                                                has spec.managementState Managed
#                                              removed: managementState Removed and the
#                                                ClusterOperator's conditions have reason Removed
#                                              capability-disabled: ImageRegistry only in
#                                                knownCapabilities; the ClusterOperator and the
#                                                Config instance do not exist
#                                              (the provisioner does not read them: start it with
#                                              --mode=removed to match removed/capability-disabled)
#   openshift-sim.sh install-image-api DIR     apply only the image.openshift.io CRD
#   openshift-sim.sh uninstall-image-api DIR   delete it (plain Kubernetes for R4 Auto); waits
#                                              until discovery no longer serves the group
#   openshift-sim.sh start DIR [FLAGS...]      start build/pullpolicy-sim (the dockercfg
#                                              provisioner) in the background; FLAGS go to it
#                                              (--mode=current|early416|legacy|removed, --delay=S...).
#                                              Waits until it has listed the cluster.
#                                              pid: DIR/openshift-sim.pid, log: DIR/logs/openshift-sim.log
#   openshift-sim.sh stop DIR                  stop it (SIGTERM, then SIGKILL after 10 s)
#   openshift-sim.sh status DIR                exit 0 when it runs
#
# DIR is the testenv directory (TESTENV_DIR). Its kubeconfig is looked up as DIR/kubeconfig
# (or DIR/admin.kubeconfig); KUBECONFIG overrides. kubectl is $KUBECTL, else the one in DIR/bindir,
# else the one of the cached control plane, else the one in PATH. The provisioner binary is
# $PULLPOLICY_SIM, else ${PULLPOLICY_BUILD:-<repo>/build}/pullpolicy-sim.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fixtures="$root/test/fixtures/openshift"

log() { echo "openshift-sim: $*" >&2; }
die() {
        log "ERROR: $*"
        exit 1
}
usage() {
        sed -n '2,38p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

find_kubeconfig() {
        local dir=$1 f
        if [ -n "${KUBECONFIG:-}" ]; then
                echo "$KUBECONFIG"
                return
        fi
        for f in "$dir/kubeconfig" "$dir/admin.kubeconfig" "$dir/kubeconfig.yaml"; do
                if [ -f "$f" ]; then
                        echo "$f"
                        return
                fi
        done
        die "no kubeconfig in $dir (is the testenv running? hack/testenv.sh start $dir)"
}

find_kubectl() {
        local dir=$1 bindir
        if [ -n "${KUBECTL:-}" ]; then
                echo "$KUBECTL"
                return
        fi
        # hack/testenv.sh records the directory of its binaries in DIR/bindir.
        if [ -f "$dir/bindir" ] && [ -x "$(cat "$dir/bindir")/kubectl" ]; then
                echo "$(cat "$dir/bindir")/kubectl"
                return
        fi
        # The cached control plane's kubectl (hack/build-control-plane.sh), newest first; never
        # start a build from here.
        for bindir in $(ls -1dt "${PULLPOLICY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pullpolicy}"/controlplane-*/bin 2>/dev/null); do
                if [ -x "$bindir/kubectl" ]; then
                        echo "$bindir/kubectl"
                        return
                fi
        done
        command -v kubectl >/dev/null || die "no kubectl found"
        command -v kubectl
}

kc() {
        "$KUBECTL_BIN" --kubeconfig="$KCFG" --request-timeout=30s "$@"
}

image_api_discoverable() {
        kc get --raw /apis/image.openshift.io/v1 >/dev/null 2>&1
}

wait_image_api() {
        local want=$1 i
        for ((i = 0; i < 120; i++)); do
                if image_api_discoverable; then
                        [ "$want" = present ] && return 0
                else
                        [ "$want" = absent ] && return 0
                fi
                sleep 0.5
        done
        die "image.openshift.io is not $want in discovery after 60 s"
}

install_image_api() {
        kc apply --server-side --force-conflicts --field-manager=openshift-sim \
                -f "$fixtures/image-api-crd.yaml" >&2
        kc wait --for=condition=Established --timeout=60s \
                crd/imagestreams.image.openshift.io >&2
        wait_image_api present
}

# The ImageRegistry capability is one of ClusterVersion's known capabilities (4.14+ list).
known_caps='"Build","CSISnapshot","CloudControllerManager","CloudCredential","Console","DeploymentConfig","ImageRegistry","Ingress","Insights","MachineAPI","NodeTuning","OperatorLifecycleManager","Storage","baremetal","marketplace","openshift-samples"'

now_rfc3339() { date -u +%Y-%m-%dT%H:%M:%SZ; }

set_status() { # KIND NAME JSON
        kc patch "$1" "$2" --subresource=status --type=merge -p "$3" >/dev/null
}

# Conditions as the image-registry operator reports them (Available first: OpenShift's clean-up
# controller looks at conditions[0].reason).
registry_conditions() { # managed|removed
        local t reason avail prog
        t=$(now_rfc3339)
        if [ "$1" = removed ]; then
                reason=Removed
                avail='Available: The registry is removed'
                prog='Progressing: All registry resources are removed'
        else
                reason=Ready
                avail='Available: The registry is ready'
                prog='Progressing: The registry is ready'
        fi
        printf '{"status":{"conditions":[%s,%s,%s]}}' \
                "{\"type\":\"Available\",\"status\":\"True\",\"reason\":\"$reason\",\"message\":\"$avail\",\"lastTransitionTime\":\"$t\"}" \
                "{\"type\":\"Progressing\",\"status\":\"False\",\"reason\":\"$reason\",\"message\":\"$prog\",\"lastTransitionTime\":\"$t\"}" \
                "{\"type\":\"Degraded\",\"status\":\"False\",\"reason\":\"$reason\",\"lastTransitionTime\":\"$t\"}"
}

cmd_registry() {
        local state=${1:-}
        local enabled
        case $state in
        managed | removed) enabled="${known_caps}" ;;
        capability-disabled) enabled=${known_caps/,\"ImageRegistry\"/} ;;
        *) die "registry: state must be managed, removed or capability-disabled" ;;
        esac
        # Created when missing, never re-applied: a watcher must not see a Managed flash
        # while the state is set to removed.
        kc create -f "$fixtures/registry-objects.yaml" >/dev/null 2>&1 || true
        set_status clusterversion version \
                "{\"status\":{\"capabilities\":{\"enabledCapabilities\":[$enabled],\"knownCapabilities\":[$known_caps]},\"desired\":{\"version\":\"4.18.0\"}}}"
        if [ "$state" = capability-disabled ]; then
                # Without the capability the image-registry operator is not installed at all.
                kc delete --ignore-not-found --wait=true clusteroperator image-registry >/dev/null
                kc delete --ignore-not-found --wait=true configs.imageregistry.operator.openshift.io cluster >/dev/null
                log "registry: capability-disabled (ImageRegistry not enabled; no image-registry ClusterOperator)"
                return
        fi
        local ms=Managed
        [ "$state" = removed ] && ms=Removed
        kc patch configs.imageregistry.operator.openshift.io cluster --type=merge \
                -p "{\"spec\":{\"managementState\":\"$ms\"}}" >/dev/null
        set_status configs.imageregistry.operator.openshift.io cluster \
                "{\"status\":{\"observedGeneration\":1,\"readyReplicas\":$([ "$ms" = Managed ] && echo 1 || echo 0)}}"
        set_status clusteroperator image-registry "$(registry_conditions "$state")"
        log "registry: $state (managementState $ms)"
}

cmd_install() {
        kc apply --server-side --force-conflicts --field-manager=openshift-sim \
                -f "$fixtures/image-puller-clusterrole.yaml" \
                -f "$fixtures/openshift-config.yaml" \
                -f "$fixtures/registry-crds.yaml" >&2
        kc wait --for=condition=Established --timeout=60s \
                crd/clusterversions.config.openshift.io crd/clusteroperators.config.openshift.io \
                crd/configs.imageregistry.operator.openshift.io >&2
        install_image_api
        cmd_registry managed
        log "installed (system:image-puller, image.openshift.io, openshift-config/pull-secret, registry objects: managed)"
}

cmd_uninstall_image_api() {
        kc delete --ignore-not-found --wait=true --timeout=60s \
                crd/imagestreams.image.openshift.io >&2
        wait_image_api absent
        log "image.openshift.io removed"
}

pidfile() { echo "$DIR/openshift-sim.pid"; }
logfile() { echo "$DIR/logs/openshift-sim.log"; }

sim_running() {
        local pid
        [ -f "$(pidfile)" ] || return 1
        pid=$(cat "$(pidfile)")
        [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

cmd_start() {
        local bin=${PULLPOLICY_SIM:-${PULLPOLICY_BUILD:-$root/build}/pullpolicy-sim} pid i
        [ -x "$bin" ] || die "$bin not built (make build)"
        if sim_running; then
                die "already running (pid $(cat "$(pidfile)")); stop it first"
        fi
        mkdir -p "$DIR/logs"
        : >"$(logfile)"
        # setsid: the provisioner outlives this script and its terminal.
        setsid "$bin" --kubeconfig="$KCFG" "$@" >>"$(logfile)" 2>&1 </dev/null &
        pid=$!
        echo "$pid" >"$(pidfile)"
        # The provisioner logs "synced" once its first list is done: from then on every new
        # service account is seen.
        for ((i = 0; i < 300; i++)); do
                if grep -q ' synced' "$(logfile)"; then
                        log "started (pid $pid, log $(logfile))"
                        return 0
                fi
                if ! kill -0 "$pid" 2>/dev/null; then
                        rm -f "$(pidfile)"
                        tail -n 20 "$(logfile)" >&2
                        die "pullpolicy-sim exited at start"
                fi
                sleep 0.1
        done
        die "pullpolicy-sim did not sync within 30 s (log $(logfile))"
}

cmd_stop() {
        local pid i
        if ! sim_running; then
                rm -f "$(pidfile)"
                log "not running"
                return 0
        fi
        pid=$(cat "$(pidfile)")
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
                log "pid $pid ignored SIGTERM; killing it"
                kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$(pidfile)"
        log "stopped (pid $pid)"
}

cmd=${1:-}
case $cmd in
-h | --help | help | "")
        usage
        [ -n "$cmd" ] && exit 0 || exit 2
        ;;
esac
[ $# -ge 2 ] || {
        usage >&2
        exit 2
}
DIR=$2
shift 2
[ -d "$DIR" ] || die "$DIR is not a directory"
DIR=$(cd "$DIR" && pwd)

case $cmd in
status)
        sim_running
        exit
        ;;
stop)
        cmd_stop
        exit
        ;;
esac

KCFG=$(find_kubeconfig "$DIR")
KUBECTL_BIN=$(find_kubectl "$DIR")

case $cmd in
install) cmd_install ;;
install-image-api) install_image_api ;;
uninstall-image-api) cmd_uninstall_image_api ;;
registry) cmd_registry "$@" ;;
start) cmd_start "$@" ;;
*)
        usage >&2
        exit 2
        ;;
esac
