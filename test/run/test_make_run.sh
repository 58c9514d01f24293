#!/usr/bin/env bash
# The README's first command, `make run`, end to end: hack/run.sh in a run
# directory of its own (its own control plane on free loopback ports), what it
# prints, a second run reusing the first, and hack/stop.sh ending all of it.
# Prints cmocka-style result lines so that hack/run-tests.sh adds them up.
set -uo pipefail
root=${PULLPOLICY_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${PULLPOLICY_BUILD:-${BUILD:-build}}
[[ $build == /* ]] || build=$root/$build
run_dir=$(mktemp -d "${TMPDIR:-/tmp}/pullpolicy-make-run.XXXXXX")
out1=$run_dir/run1.out
out2=$run_dir/run2.out
logdir=$build/test-logs
mkdir -p "$logdir"

# shellcheck source=../support/check.sh
source "$root/test/support/check.sh"

cleanup() {
        RUN_DIR=$run_dir bash "$root/hack/stop.sh" >/dev/null 2>&1
        # The leak check that runs last searches every log under test-logs.
        [ -f "$run_dir/controller.log" ] && cp "$run_dir/controller.log" "$logdir/make-run-controller.log"
        rm -rf "$run_dir"
}
trap cleanup EXIT

strip() { sed 's/\x1b\[[0-9;]*m//g' "$1"; }

run_first() {
        (cd "$root" && RUN_DIR=$run_dir BUILD=$build bash hack/run.sh) >"$out1" 2>&1
        local rc=$?
        [ $rc -eq 0 ] || { echo "hack/run.sh exited $rc:"; tail -20 "$out1"; }
        return $rc
}

# Every sample policy is listed, and each one is Ready=True.
policies_ready() {
        local rows
        rows=$(strip "$out1" | sed -n '/== kubectl get ppol -A/,/== RoleBindings/p' | grep -E '^[a-z].* (True|False) ')
        local n bad
        n=$(printf '%s\n' "$rows" | grep -c . || true)
        bad=$(printf '%s\n' "$rows" | awk '$3 != "True"')
        echo "$n policies listed"
        [ "$n" -ge 6 ] && [ -z "$bad" ] || { printf '%s\n' "$rows"; return 1; }
}

# R1/R2: the cross-project grants of the samples, as RoleBindings to system:image-puller.
role_bindings_listed() {
        strip "$out1" | grep -E '^project-b +ppol-project-a-default-project-a-[0-9a-f]{10} +system:image-puller +default$' &&
                strip "$out1" | grep -E '^project-b +ppol-team-a-project-a-[0-9a-f]{10} +system:image-puller +system:serviceaccounts:project-a$'
}

# R3: a Pod created after the links carries them through the ServiceAccount admission plugin.
pod_carries_links() {
        local pod
        pod=$(strip "$out1" | sed -n '/== a Pod created now/,/== global pull secret/p')
        printf '%s\n' "$pod" | grep -qx '  my-secret' && printf '%s\n' "$pod" | grep -qE '^  default-dockercfg-[a-z0-9]{5}$' ||
                { printf '%s\n' "$pod"; return 1; }
}

# R5: the distributed copies exist in the target namespaces.
copies_listed() {
        strip "$out1" | grep -E '^project-a +team-a-registry +kubernetes.io/dockerconfigjson$' >/dev/null &&
                strip "$out1" | grep -E '^project-c +team-a-registry +kubernetes.io/dockerconfigjson$' >/dev/null
}

# R6: the sample's registry merged into the global pull secret, the fixture's registries kept.
global_secret_merged() {
        local g
        g=$(strip "$out1" | sed -n '/== global pull secret/,/Everything keeps running/p')
        printf '%s\n' "$g" | grep -qx '  registry.partner.example.com' && printf '%s\n' "$g" | grep -qx '  quay.io' ||
                { printf '%s\n' "$g"; return 1; }
}

# R12: the credentials of a good secret are Verified at the local registry, an expired one's
# are CredentialsRejected, naming the secret.
credentials_checked() {
        local t
        t=$(strip "$out1" | sed -n '/== credentials proven at the registry/,/Everything keeps running/p')
        printf '%s\n' "$t" | grep -qE '^verify-robot +True +Verified ' &&
                printf '%s\n' "$t" | grep -qE '^verify-expired-robot +True +CredentialsRejected +secret pullpolicy-system/registry-expired-robot at registry 127\.0\.0\.1:' ||
                { printf '%s\n' "$t"; return 1; }
}

# R13: the pod made before the link, failing to pull, is counted, named, and has its Event.
stale_pod_found() {
        local t
        t=$(strip "$out1" | sed -n '/== a pod that predates a link/,/Everything keeps running/p')
        printf '%s\n' "$t" | grep -qE '^stale-demo +True +1 +pod pullpolicy-system/stale-demo was created before demo-registry' &&
                printf '%s\n' "$t" | grep -qE '^Warning +StalePullSecrets +stale-demo +created before pull secret\(s\) demo-registry' ||
                { printf '%s\n' "$t"; return 1; }
}

prints_how_to_use() {
        grep -qx "export KUBECONFIG=$run_dir/kubeconfig" "$out1" && grep -qx 'make stop' "$out1"
}

# A second `make run` reuses the running control plane and controller.
second_run_reuses() {
        local pid_before pid_after
        pid_before=$(cat "$run_dir/controller.pid")
        (cd "$root" && RUN_DIR=$run_dir BUILD=$build bash hack/run.sh) >"$out2" 2>&1 || {
                tail -20 "$out2"
                return 1
        }
        pid_after=$(cat "$run_dir/controller.pid")
        grep -q "already running (pid $pid_before)" "$out2" && [ "$pid_before" = "$pid_after" ] &&
                ! strip "$out2" | sed -n '/== kubectl get ppol -A/,/== RoleBindings/p' | grep -E ' False ' ||
                { echo "controller pid $pid_before -> $pid_after"; return 1; }
}

stop_ends_everything() {
        local pids=()
        [ -f "$run_dir/controller.pid" ] && pids+=("$(cat "$run_dir/controller.pid")")
        local f
        for f in "$run_dir"/*.pid; do [ -f "$f" ] && pids+=("$(cat "$f")"); done
        [ ${#pids[@]} -gt 0 ] || { echo "no pid files in $run_dir"; return 1; }
        RUN_DIR=$run_dir bash "$root/hack/stop.sh" >/dev/null 2>&1 || return 1
        # A zombie has ended; whether it is reaped depends on what PID 1 is here.
        local p st alive=()
        for p in "${pids[@]}"; do
                st=$(ps -o stat= -p "$p" 2>/dev/null) || continue
                [[ $st == Z* ]] || alive+=("$p")
        done
        [ ${#alive[@]} -eq 0 ] || { echo "still running after stop: ${alive[*]}"; return 1; }
        echo "${#pids[@]} process(es) ended"
}

check_begin 11
if check test_make_run_succeeds run_first; then
        check test_policies_ready policies_ready
        check test_role_bindings_listed role_bindings_listed
        check test_pod_carries_links pod_carries_links
        check test_copies_listed copies_listed
        check test_global_secret_merged global_secret_merged
        check test_prints_how_to_use prints_how_to_use
        check test_credentials_checked credentials_checked
        check test_stale_pod_found stale_pod_found
        check test_second_run_reuses second_run_reuses
else
        for n in policies_ready role_bindings_listed pod_carries_links copies_listed global_secret_merged prints_how_to_use credentials_checked stale_pod_found second_run_reuses; do
                check_fail "test_$n" "make run failed"
        done
fi
check test_stop_ends_everything stop_ends_everything
check_end
