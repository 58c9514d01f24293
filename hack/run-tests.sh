#!/usr/bin/env bash
# Runs cmocka test binaries and adds up their results.
#
#   run-tests.sh unit BIN...                 unit tests only
#   run-tests.sh integration BIN...          starts the control plane, runs, stops
#   run-tests.sh all UNIT_BIN... -- INTEG_BIN...
#
# An integration argument BIN@MODE runs BIN with PULLPOLICY_SIM_MODE=MODE (the OpenShift
# simulation mode of an e2e suite's provisioner: current, early416, legacy, removed; see
# test/sim/main.c) and logs to <name>@MODE.log; plain BIN uses the e2e default (current).
#
# Each binary's output goes to $BUILD/test-logs/<name>.log and is echoed.
# A binary that exits non-zero without a failed test (a crash, a sanitizer
# report, a valgrind error) counts as one failure. The last line is the
# plain "total: N passed, N failed, N skipped" that CI reads.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
VALGRIND=${VALGRIND:-0}
TESTENV_DIR=${TESTENV_DIR:-$root/.testenv}
case $BUILD in
/*) build_abs=$BUILD ;;
*) build_abs=$root/$BUILD ;;
esac
logdir="$build_abs/test-logs"
mkdir -p "$logdir"

mode=${1:?mode}
shift
unit=()
integ=()
case "$mode" in
unit) unit=("$@") ;;
integration) integ=("$@") ;;
all)
        while [ $# -gt 0 ] && [ "$1" != "--" ]; do unit+=("$1"); shift; done
        [ $# -gt 0 ] && shift
        integ=("$@")
        ;;
*) echo "run-tests.sh: unknown mode $mode" >&2; exit 2 ;;
esac

passed=0 failed=0 skipped=0
failed_names=()

run_one() {
        local bin=$1 name log rc p f s total sim_mode=
        if [[ "$bin" == *@* ]]; then
                sim_mode=${bin##*@}
                bin=${bin%@*}
        fi
        name=${bin#"$BUILD"/test/}${sim_mode:+@$sim_mode}
        log="$logdir/${name//\//_}.log"
        local -a cmd=("$bin")
        if [[ "$bin" == *.lua || "$bin" == *.sh ]]; then
                name=${bin#test/}
                log="$logdir/${name//\//_}.log"
                cmd=(lua5.1 "$bin")
                [[ "$bin" == *.sh ]] && cmd=(bash "$bin")
        elif [ "$VALGRIND" = 1 ]; then
                cmd=(valgrind -q --leak-check=full --show-leak-kinds=definite,indirect
                        --errors-for-leak-kinds=definite,indirect --error-exitcode=99
                        --suppressions="$root/hack/valgrind.supp" "$bin")
        fi
        echo "=== $name"
        if [ -n "$sim_mode" ]; then
                PULLPOLICY_SIM_MODE=$sim_mode "${cmd[@]}" >"$log" 2>&1
        else
                "${cmd[@]}" >"$log" 2>&1
        fi
        rc=$?
        sed 's/^/    /' "$log"
        total=$(sed -n 's/^\[==========\] \([0-9]*\) test(s) run\..*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
        p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\..*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
        f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
        s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test(s), listed below:.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
        if [ "$total" -eq 0 ] && [ "$rc" -eq 0 ]; then
                echo "    (no test ran in $name)"
                f=1
        elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
                echo "    ($name exited with status $rc after its tests: counted as a failure)"
                f=1
        fi
        passed=$((passed + p))
        failed=$((failed + f))
        skipped=$((skipped + s))
        [ "$f" -gt 0 ] && failed_names+=("$name")
        return 0
}

for b in "${unit[@]}"; do run_one "$b"; done
if [ ${#unit[@]} -gt 0 ]; then
        echo "unit: $passed passed, $failed failed, $skipped skipped"
fi

if [ ${#integ[@]} -gt 0 ]; then
        u_p=$passed u_f=$failed u_s=$skipped
        export TESTENV_DIR PULLPOLICY_ROOT="$root" PULLPOLICY_BUILD="$build_abs"
        # Under VALGRIND=1 the controller processes that e2e tests start run under
        # memcheck too; tests assert their exit status, so a leak fails the test.
        if [ "$VALGRIND" = 1 ]; then
                export PULLPOLICY_CONTROLLER_WRAPPER="valgrind -q --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --suppressions=$root/hack/valgrind.supp"
        fi
        if ! bash "$root/hack/testenv.sh" start "$TESTENV_DIR"; then
                echo "the local control plane did not start; logs in $TESTENV_DIR/logs" >&2
                failed=$((failed + 1))
                failed_names+=("testenv-start")
        elif ! bash "$root/hack/openshift-sim.sh" install "$TESTENV_DIR" >"$logdir/openshift-sim-install.log" 2>&1; then
                # The OpenShift pieces (image.openshift.io, system:image-puller, the global
                # pull secret) are part of the environment every suite may rely on.
                echo "the OpenShift simulation could not be installed; see $logdir/openshift-sim-install.log" >&2
                failed=$((failed + 1))
                failed_names+=("openshift-sim-install")
                bash "$root/hack/testenv.sh" stop "$TESTENV_DIR" >/dev/null 2>&1
        else
                for b in "${integ[@]}"; do run_one "$b"; done
                bash "$root/hack/testenv.sh" stop "$TESTENV_DIR" >/dev/null 2>&1
        fi
        echo "integration: $((passed - u_p)) passed, $((failed - u_f)) failed, $((skipped - u_s)) skipped"
fi

if [ ${#failed_names[@]} -gt 0 ]; then
        echo "failed: ${failed_names[*]} (logs in $logdir; control-plane logs in $TESTENV_DIR/logs)"
fi
echo "total: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
