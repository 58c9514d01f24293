#!/usr/bin/env bash
# The short variant of the fault suite (test/faults/run.sh short) inside `make test`: every
# fault of issue 10 once, briefly, on a control plane of its own. One cmocka-style test per
# fault (its table row must say ok: converged, 0 duplicates, 0 lost, 0 of the concurrent
# writer's entries lost, the controller alive, the failed-request rate bounded), and one that
# no process the suite started is left running. The full run is `make faults`.
set -uo pipefail
root=${PULLPOLICY_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${PULLPOLICY_BUILD:-${BUILD:-build}}
[[ $build == /* ]] || build=$root/$build
dir=$(mktemp -d "${TMPDIR:-/tmp}/pullpolicy-faults-short.XXXXXX")
out=$dir/out
logdir=$build/test-logs
mkdir -p "$logdir"

# shellcheck source=../support/check.sh
source "$root/test/support/check.sh"

cleanup() {
        # The leak check that runs last searches every log under test-logs.
        local f
        for f in "$dir"/logs/controller*.log "$dir"/logs/replica-*.log; do
                [ -f "$f" ] && cp "$f" "$logdir/faults-$(basename "$f")"
        done
        rm -rf "$dir"
}
trap cleanup EXIT

FAULTS_DIR=$dir PULLPOLICY_BUILD=$build bash "$root/test/faults/run.sh" short >"$out" 2>&1
rc=$?
sed 's/^/  /' "$out"

row_ok() { grep -E "^\| $1 \|" "$out" | grep -qF "| ok |"; }

nothing_left() {
        local pid left=()
        [ -s "$dir/faults.pids" ] || { echo "no pid file"; return 1; }
        while read -r pid; do
                st=$(ps -o stat= -p "$pid" 2>/dev/null) || continue
                [[ $st == Z* ]] || left+=("$pid")
        done <"$dir/faults.pids"
        for c in etcd kube-apiserver kube-controller-manager openshift-sim; do
                [ -s "$dir/$c.pid" ] && kill -0 "$(cat "$dir/$c.pid")" 2>/dev/null && left+=("$c")
        done
        [ ${#left[@]} -eq 0 ] || { echo "still running: ${left[*]}"; return 1; }
}

check_begin 11
for f in 1 2a 2b 3 4 5 6 7 8 9; do
        check "test_fault_$f" row_ok "$f"
done
check test_faults_cleanup nothing_left
[ $rc -eq 0 ] || echo "test/faults/run.sh exited $rc"
check_end
