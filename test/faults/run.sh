#!/usr/bin/env bash
# The fault-injection suite of issue 10 (README "Faults"):
#
#   test/faults/run.sh full|short [--only N,N...]
#
# Starts a control plane of its own (hack/testenv.sh in a fresh directory on free ports),
# the OpenShift simulation (mode current) and the PullPolicy CRD, then test/faults/faults.py
# runs the controller behind test/faults/proxy.py and the nine faults, printing one table
# row per fault. Whatever fails, the trap stops every process the suite started (the
# controllers, the proxy, the simulation, the control plane). `make faults` runs full;
# `make test` runs short (test/run/test_faults.sh). FAULTS_DIR keeps the run's directory
# (logs) instead of a temporary one.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
mode=${1:-short}
shift || true
build=${PULLPOLICY_BUILD:-${BUILD:-build}}
[[ $build == /* ]] || build=$root/$build
dir=${FAULTS_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/pullpolicy-faults.XXXXXX")}
mkdir -p "$dir/logs"
dir=$(cd "$dir" && pwd -P)
# Never the caller's cluster: the simulation's install and kubectl go to this one.
export KUBECONFIG=$dir/kubeconfig
unset KUBECTL

cleanup() {
        local pid
        if [[ -s $dir/faults.pids ]]; then
                while read -r pid; do
                        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
                done <"$dir/faults.pids"
        fi
        PULLPOLICY_BUILD=$build bash "$root/hack/openshift-sim.sh" stop "$dir" >/dev/null 2>&1
        # A SIGSTOPped etcd would not take the TERM of `stop`.
        [[ -s $dir/etcd.pid ]] && kill -CONT "$(cat "$dir/etcd.pid")" 2>/dev/null
        bash "$root/hack/testenv.sh" stop "$dir" >/dev/null 2>&1
        echo "faults: stopped everything (logs in $dir/logs)" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "faults: mode $mode, directory $dir" >&2
# Fewer seats in all (default 400 + 200) so that API Priority and Fairness's share of 1
# (fault 7) is 1 seat; plenty for this small cluster otherwise.
# Exported: faults 1 and 5 restart the API server with the same flags.
export TESTENV_APISERVER_ONLY_FLAGS="--max-requests-inflight=20 --max-mutating-requests-inflight=10"
bash "$root/hack/testenv.sh" start "$dir" || exit 1
PULLPOLICY_BUILD=$build bash "$root/hack/openshift-sim.sh" install "$dir" >"$dir/logs/openshift-sim-install.log" 2>&1 ||
        { echo "faults: the OpenShift simulation did not install" >&2; exit 1; }
PULLPOLICY_BUILD=$build bash "$root/hack/openshift-sim.sh" start "$dir" --mode=current --delay=1 >/dev/null ||
        { echo "faults: the dockercfg provisioner did not start" >&2; exit 1; }
kubectl=$(cat "$dir/bindir")/kubectl
KUBECONFIG=$dir/kubeconfig "$kubectl" apply --server-side -k "$root/crds/" >/dev/null &&
        KUBECONFIG=$dir/kubeconfig "$kubectl" wait --for=condition=Established crd/pullpolicies.pullpolicy.io --timeout=60s >/dev/null ||
        { echo "faults: the CRD did not install" >&2; exit 1; }
# In the background and waited for, so that a TERM to this script runs the trap at once.
python3 "$root/test/faults/faults.py" --dir "$dir" --mode "$mode" --build "$build" --results "$dir/results.json" "$@" &
echo $! >>"$dir/faults.pids"
wait $!
