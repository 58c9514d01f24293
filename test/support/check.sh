# shellcheck shell=bash
# cmocka-style results for shell tests, so that hack/run-tests.sh adds them up
# with the C tests'. Source it, call check_begin N, then check NAME COMMAND...
# for each test, check_fail NAME WHY for a test that cannot run, check_skip
# NAME WHY for one that does not apply, and end with check_end (which exits 1
# when a test failed).

check_passed=0 check_failed=0 check_names=() check_skipped=()

check_begin() { echo "[==========] Running $1 test(s)."; }

check() {
        local name=$1
        shift
        echo "[ RUN      ] $name"
        if "$@"; then
                echo "[       OK ] $name"
                check_passed=$((check_passed + 1))
        else
                echo "[  FAILED  ] $name"
                check_failed=$((check_failed + 1))
                check_names+=("$name")
        fi
}

check_fail() {
        echo "[ RUN      ] $1"
        echo "$2"
        echo "[  FAILED  ] $1"
        check_failed=$((check_failed + 1))
        check_names+=("$1")
}

check_skip() {
        echo "[ RUN      ] $1"
        echo "skipped: $2"
        echo "[  SKIPPED ] $1"
        check_skipped+=("$1")
}

check_end() {
        local n
        echo "[==========] $((check_passed + check_failed + ${#check_skipped[@]})) test(s) run."
        echo "[  PASSED  ] $check_passed test(s)."
        if [ ${#check_skipped[@]} -gt 0 ]; then
                echo "[  SKIPPED ] ${#check_skipped[@]} test(s), listed below:"
                for n in "${check_skipped[@]}"; do echo "[  SKIPPED ] $n"; done
        fi
        if [ "$check_failed" -gt 0 ]; then
                echo "[  FAILED  ] $check_failed test(s), listed below:"
                for n in "${check_names[@]}"; do echo "[  FAILED  ] $n"; done
                exit 1
        fi
        exit 0
}
